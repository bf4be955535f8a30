"""Create the SMS channel's tables: consent events, handled message ids, offered choices, undelivered replies.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_consent_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('stop', 'start')", name=op.f("ck_sms_consent_events_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_consent_events")),
    )
    op.create_index(op.f("ix_sms_consent_events_phone"), "sms_consent_events", ["phone"])
    op.create_table(
        "sms_inbound",
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_sid", name=op.f("pk_sms_inbound")),
    )
    op.create_table(
        "sms_choices",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("payloads", sa.Text(), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_sms_choices")),
    )
    op.create_table(
        "sms_undelivered",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_undelivered")),
    )


def downgrade() -> None:
    op.drop_table("sms_undelivered")
    op.drop_table("sms_choices")
    op.drop_table("sms_inbound")
    op.drop_index(op.f("ix_sms_consent_events_phone"), table_name="sms_consent_events")
    op.drop_table("sms_consent_events")
