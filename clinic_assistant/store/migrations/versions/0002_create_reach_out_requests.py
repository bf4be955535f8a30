"""Create reach_out_requests: visitors in crisis who asked staff to contact them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reach_out_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("contact", sa.String(length=320), nullable=False),
        sa.Column("contact_kind", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("contact_kind IN ('phone', 'email')", name=op.f("ck_reach_out_requests_contact_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reach_out_requests")),
    )
    op.create_index(op.f("ix_reach_out_requests_conversation_id"), "reach_out_requests", ["conversation_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reach_out_requests_conversation_id"), table_name="reach_out_requests")
    op.drop_table("reach_out_requests")
