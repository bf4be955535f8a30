"""The clinic database's tables as SQLAlchemy Core metadata: the one source of the schema.

Migrations (``migrations/versions``) must produce exactly this; a test compares them.
"""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
    true,
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
    # The text itself, kept before anything else is done with it, so a turn that fails (or a process that
    # dies) leaves it to be handled again and visible to staff: never lost.
    Column("conversation_id", String(255), index=True),
    Column("phone", String(32)),
    Column("body", Text),
    Column("media", Integer, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False, server_default="handled"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_at", DateTime(timezone=True)),  # a process is handling it since then
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("handled_at", DateTime(timezone=True)),
    Column("last_error", Text),
    CheckConstraint("status IN ('received', 'failed', 'handled')", name="status"),
)
Index("ix_sms_inbound_due", sms_inbound.c.status, sms_inbound.c.next_attempt_at)

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

# ---- Staff console -------------------------------------------------------------------------------------------------

STAFF_ROLES = ("admin", "reviewer")

# People who sign in to the staff console.
staff_users = Table(
    "staff_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # Argon2, with its parameters
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64), nullable=True),  # None: created on the command line
    Column("last_login_at", DateTime(timezone=True), nullable=True),
    _one_of("role", STAFF_ROLES),
)

# What staff did in the console and what ran on its data. Append-only: triggers created by migration 0005
# refuse UPDATE and DELETE (tables.py can't express triggers). ``detail`` never holds contact data.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),  # a staff username, or "system"
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False, server_default=text("''")),
    Column("detail", Text, nullable=False, server_default=text("''")),
)

PRIORITY_FLAGGED, PRIORITY_OPEN_REQUEST, PRIORITY_UNSURE, PRIORITY_OTHER, PRIORITY_REVIEWED = range(5)

# The index of conversations the console's queue reads, kept up to date from the tracker store by the indexer.
conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", String(255), primary_key=True),
    Column("channel", String(32), nullable=False),  # the first patient message's input channel, "" if unknown
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False, index=True),  # the newest message
    Column("user_turns", Integer, nullable=False),
    Column("fallbacks", Integer, nullable=False),  # patient turns the assistant did not understand
    Column("low_confidence", Integer, nullable=False),  # patient turns with intent confidence < 0.6
    Column("flag_kind", String(16), nullable=True, index=True),  # "crisis" if any, else "emergency" if any
    Column("open_requests", Integer, nullable=False),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
    Column("reviewed_by", String(64), nullable=True),
    Column("priority", SmallInteger, nullable=False),  # PRIORITY_*: the queue's order, most urgent first
    _one_of("flag_kind", FLAG_KINDS),
)
# The queue's order (keyset pagination), and the same within one channel for the channel filter.
_queue_order = (conversations.c.priority, conversations.c.last_at.desc(), conversations.c.conversation_id)
Index("ix_conversations_queue", *_queue_order)
Index("ix_conversations_channel_queue", conversations.c.channel, *_queue_order)

SPEAKERS = ("patient", "assistant")

# Every patient and assistant message (id: the tracker event's), for the text search and the dashboard.
# PostgreSQL also has a GIN index on to_tsvector('english', text), created by migration 0005.
conversation_messages = Table(
    "conversation_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("conversation_id", String(255), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("speaker", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("intent", String(255), nullable=True),  # patient messages
    Column("confidence", Float, nullable=True),  # patient messages
    Column("response", String(255), nullable=True),  # retrieval key (patient) or utter action (assistant)
    Column("channel", String(32), nullable=True),
    _one_of("speaker", SPEAKERS),
    Index("ix_conversation_messages_conversation", "conversation_id", "id"),
)

# The intents of each conversation's patient messages, for the queue's intent filter.
conversation_intents = Table(
    "conversation_intents",
    metadata,
    Column("conversation_id", String(255), primary_key=True),
    Column("intent", String(255), primary_key=True),
    Index("ix_conversation_intents_intent", "intent", "conversation_id"),
)

conversation_tags = Table(
    "conversation_tags",
    metadata,
    Column("conversation_id", String(255), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("tagged_by", String(64), nullable=False),
    Column("tagged_at", DateTime(timezone=True), nullable=False),
    Index("ix_conversation_tags_tag", "tag", "conversation_id"),
)

conversation_notes = Table(
    "conversation_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("author", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("text", Text, nullable=False),
)

# A reviewer's "this message meant that intent": exported as NLU training data.
corrections = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("message_id", Integer, nullable=False),  # the tracker event id of the patient message
    Column("text", Text, nullable=False),  # the patient's message, verbatim
    Column("intent", String(255), nullable=False),
    Column("response", String(255), nullable=True),  # a retrieval intent's response key, e.g. "symptoms/overview"
    Column("author", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

REQUEST_KINDS = ("consultation", "handoff", "reach_out")
STAFF_REQUEST_STATUSES = ("new", "contacted", "scheduled", "closed")

# Every status staff gave a request (never overwritten): a request's status is its newest event, "new" without one.
request_status_events = Table(
    "request_status_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_kind", String(16), nullable=False),
    Column("request_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    _one_of("request_kind", REQUEST_KINDS),
    _one_of("status", STAFF_REQUEST_STATUSES),
    Index("ix_request_status_events_request", "request_kind", "request_id", "id"),
)

# How far the indexer has read each source (the tracker's events, the clinic's flag and request tables).
index_watermarks = Table(
    "index_watermarks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_id", Integer, nullable=False),
)
