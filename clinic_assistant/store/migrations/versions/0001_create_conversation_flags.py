"""Create conversation_flags: safety flags raised in conversations.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 00:25:49.128816
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detected_by", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('crisis', 'emergency')", name=op.f("ck_conversation_flags_kind")),
        sa.CheckConstraint("detected_by IN ('pattern', 'model')", name=op.f("ck_conversation_flags_detected_by")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_flags")),
    )
    op.create_index(op.f("ix_conversation_flags_conversation_id"), "conversation_flags", ["conversation_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_conversation_flags_conversation_id"), table_name="conversation_flags")
    op.drop_table("conversation_flags")
