"""Keep each inbound text with its handling state, so a failed turn is retried and shown to staff.

Rows from before this revision were handled when they were recorded, so they default to "handled".

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_inbound") as batch:
        batch.add_column(sa.Column("conversation_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("media", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("status", sa.String(length=16), server_default="handled", nullable=False))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.create_check_constraint("status", "status IN ('received', 'failed', 'handled')")
        batch.create_index(batch.f("ix_sms_inbound_conversation_id"), ["conversation_id"])
        batch.create_index("ix_sms_inbound_due", ["status", "next_attempt_at"])


def downgrade() -> None:
    with op.batch_alter_table("sms_inbound") as batch:
        batch.drop_index("ix_sms_inbound_due")
        batch.drop_index(batch.f("ix_sms_inbound_conversation_id"))
        batch.drop_constraint("ck_sms_inbound_status", type_="check")
        for column in ("last_error", "handled_at", "next_attempt_at", "claimed_at", "attempts", "status", "media",
                       "body", "phone", "conversation_id"):
            batch.drop_column(column)
