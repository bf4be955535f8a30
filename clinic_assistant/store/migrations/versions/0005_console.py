"""Create the staff console's tables: staff users, the append-only audit log, the conversation index, reviews.

Also what tables.py can't express: the triggers that keep audit_log append-only (SQLite and PostgreSQL) and,
on PostgreSQL, the GIN index for the queue's full text search. Consultation requests already marked contacted
on the command line get that status as their first status event.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_REFUSED = "audit_log is append-only"


def upgrade() -> None:
    _create_staff_and_audit()
    _create_index_tables()
    _create_review_tables()
    _refuse_audit_changes()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_conversation_messages_text_search ON conversation_messages "
            "USING gin (to_tsvector('english'::regconfig, text))"
        )
    op.execute(
        "INSERT INTO request_status_events (request_kind, request_id, status, actor, at) "
        "SELECT 'consultation', id, 'contacted', 'command line', contacted_at FROM consultation_requests "
        "WHERE status = 'contacted' AND contacted_at IS NOT NULL ORDER BY id"
    )


def _create_staff_and_audit() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'reviewer')", name=op.f("ck_staff_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), server_default=sa.text("''"), nullable=False),
        sa.Column("detail", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )


def _create_index_tables() -> None:
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_turns", sa.Integer(), nullable=False),
        sa.Column("fallbacks", sa.Integer(), nullable=False),
        sa.Column("low_confidence", sa.Integer(), nullable=False),
        sa.Column("flag_kind", sa.String(length=16), nullable=True),
        sa.Column("open_requests", sa.Integer(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("flag_kind IN ('crisis', 'emergency')", name=op.f("ck_conversations_flag_kind")),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversations")),
    )
    op.create_index(op.f("ix_conversations_last_at"), "conversations", ["last_at"])
    op.create_index(op.f("ix_conversations_flag_kind"), "conversations", ["flag_kind"])
    queue_order = ["priority", sa.column("last_at").desc(), "conversation_id"]
    op.create_index("ix_conversations_queue", "conversations", queue_order)
    op.create_index("ix_conversations_channel_queue", "conversations", ["channel", *queue_order])
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=255), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("response", sa.String(length=255), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.CheckConstraint("speaker IN ('patient', 'assistant')", name=op.f("ck_conversation_messages_speaker")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_messages")),
    )
    op.create_index(
        "ix_conversation_messages_conversation", "conversation_messages", ["conversation_id", "id"]
    )
    op.create_table(
        "conversation_intents",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("intent", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "intent", name=op.f("pk_conversation_intents")),
    )
    op.create_index("ix_conversation_intents_intent", "conversation_intents", ["intent", "conversation_id"])
    op.create_table(
        "index_watermarks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_index_watermarks")),
    )


def _create_review_tables() -> None:
    op.create_table(
        "conversation_tags",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("tagged_by", sa.String(length=64), nullable=False),
        sa.Column("tagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "tag", name=op.f("pk_conversation_tags")),
    )
    op.create_index("ix_conversation_tags_tag", "conversation_tags", ["tag", "conversation_id"])
    op.create_table(
        "conversation_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_notes")),
    )
    op.create_index(op.f("ix_conversation_notes_conversation_id"), "conversation_notes", ["conversation_id"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=255), nullable=False),
        sa.Column("response", sa.String(length=255), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
    )
    op.create_index(op.f("ix_corrections_conversation_id"), "corrections", ["conversation_id"])
    op.create_table(
        "request_status_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_kind", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "request_kind IN ('consultation', 'handoff', 'reach_out')",
            name=op.f("ck_request_status_events_request_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('new', 'contacted', 'scheduled', 'closed')", name=op.f("ck_request_status_events_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_status_events")),
    )
    op.create_index(
        "ix_request_status_events_request", "request_status_events", ["request_kind", "request_id", "id"]
    )


def _refuse_audit_changes() -> None:
    # A trigger, not a permission: the console and the CLI use the same database account.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_REFUSED}'; END; $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
        )
        return
    for change in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{change.lower()} BEFORE {change} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_refuse_change()")
        op.execute("DROP INDEX ix_conversation_messages_text_search")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    for table in (
        "request_status_events",
        "corrections",
        "conversation_notes",
        "conversation_tags",
        "index_watermarks",
        "conversation_intents",
        "conversation_messages",
        "conversations",
        "audit_log",
        "staff_users",
    ):
        op.drop_table(table)  # their indexes go with them
