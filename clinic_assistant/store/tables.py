"""The clinic database's tables as SQLAlchemy Core metadata: the one source of the schema.

Migrations (``migrations/versions``) must produce exactly this; a test compares them.
"""

from sqlalchemy import CheckConstraint, Column, DateTime, Integer, MetaData, String, Table, Text

# Explicit constraint names, so they are the same on SQLite and PostgreSQL and a later
# migration can drop or alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

FLAG_KINDS = ("crisis", "emergency")
DETECTORS = ("pattern", "model")


def _one_of(column: str, values: "tuple[str, ...]") -> CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


# One row per safety flag raised in a conversation (crisis or emergency wording).
conversation_flags = Table(
    "conversation_flags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("detected_by", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("flagged_at", DateTime(timezone=True), nullable=False),
    _one_of("kind", FLAG_KINDS),
    _one_of("detected_by", DETECTORS),
)

CONTACT_KINDS = ("phone", "email")

# A visitor in crisis who asked for the clinic's staff to reach out, and how.
reach_out_requests = Table(
    "reach_out_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("contact", String(320), nullable=False),  # E.164 phone number or e-mail address
    Column("contact_kind", String(16), nullable=False),
    Column("message", Text, nullable=False),  # what the visitor wrote, verbatim (times, names...)
    Column("requested_at", DateTime(timezone=True), nullable=False),
    _one_of("contact_kind", CONTACT_KINDS),
)
