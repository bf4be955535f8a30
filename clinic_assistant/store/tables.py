"""The clinic database's tables as SQLAlchemy Core metadata: the one source of the schema.

Migrations (``migrations/versions``) must produce exactly this; a test compares them.
"""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

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

REQUEST_STATUSES = ("new", "delivered", "contacted")
# "failed": the last attempt failed and the entry waits for next_attempt_at (it is retried until delivered).
DELIVERY_STATUSES = ("pending", "delivered", "failed")

# A visitor's request for a consultation, collected by the form; one per conversation.
consultation_requests = Table(
    "consultation_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(16), nullable=False, unique=True),  # what the visitor and staff quote: "CR-7K3P"
    Column("conversation_id", String(255), nullable=False, unique=True),  # a second submission is the same request
    Column("channel", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("phone", String(32), nullable=False),  # E.164
    Column("email", String(320), nullable=True),
    Column("help_with", Text, nullable=False),
    Column("best_times", Text, nullable=False),
    Column("consent_to_contact", Boolean, nullable=False),
    Column("consent_at", DateTime(timezone=True), nullable=True),
    Column("status", String(16), nullable=False, server_default=text("'new'")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("contacted_at", DateTime(timezone=True), nullable=True),
    _one_of("status", REQUEST_STATUSES),
    # Consent is only valid with the moment it was given.
    CheckConstraint("NOT consent_to_contact OR consent_at IS NOT NULL", name="consent_at"),
)

# Consultation requests still to be sent to the clinic's webhook, written with the request (transactional outbox).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("consultation_requests.id"), nullable=False, unique=True),
    Column("idempotency_key", String(64), nullable=False, unique=True),  # the request's reference
    Column("payload", Text, nullable=False),  # JSON, posted byte for byte
    Column("status", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, index=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    _one_of("status", DELIVERY_STATUSES),
)

# A visitor who asked to talk to a person, and how to reach them.
handoff_requests = Table(
    "handoff_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("name", String(200), nullable=True),
    Column("contact", String(320), nullable=False),  # E.164 phone number or e-mail address
    Column("contact_kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    _one_of("contact_kind", CONTACT_KINDS),
)

SMS_CONSENT_ACTIONS = ("stop", "start")

# Every STOP and START a texting number sent, kept (never overwritten): the newest one decides
# whether the number may be sent anything.
sms_consent_events = Table(
    "sms_consent_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone", String(32), nullable=False, index=True),  # E.164
    Column("action", String(8), nullable=False),
    Column("keyword", String(16), nullable=False),  # what the patient texted, upper case
    Column("received_at", DateTime(timezone=True), nullable=False),
    _one_of("action", SMS_CONSENT_ACTIONS),
)

# Twilio's message ids already handled, so a retried webhook is processed once (no text is kept).
sms_inbound = Table(
    "sms_inbound",
    metadata,
    Column("message_sid", String(64), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# The buttons a texting conversation was last offered, so "2" means the second one's payload.
sms_choices = Table(
    "sms_choices",
    metadata,
    Column("conversation_id", String(255), primary_key=True),
    Column("payloads", Text, nullable=False),  # JSON list, in the order shown
    Column("offered_at", DateTime(timezone=True), nullable=False),
)

# Replies Twilio would not take after every retry: kept for staff to follow up by phone.
sms_undelivered = Table(
    "sms_undelivered",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
)
