"""Consultation requests, the outbox that delivers them to the clinic, and requests to talk to a person.

A request and its outbox entry are written in one transaction (a transactional outbox): the delivery
worker sends what the outbox holds, so a stored request always reaches the clinic, even if the webhook
or the worker was down when the visitor submitted it. Like ``db``, every function raises
``StoreUnavailable`` when the database can't be used and ``ValueError`` for invalid values.
"""

import json
import secrets
from dataclasses import dataclass, fields
from datetime import datetime
from typing import List, Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import case, select
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from clinic_assistant.store.db import begin, from_row, record_problem, to_row, utc
from clinic_assistant.store.tables import (
    REQUEST_STATUSES,
    consultation_requests,
    handoff_requests,
    outbox,
    request_status_events,
)

# Crockford's base32 without I, L, O, U: no letter is read as another when a reference is said on the phone.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 4
# 32**4 references: a collision is rare, several in a row mean something else is wrong.
_REFERENCE_TRIES = 10
_UNDELIVERED = ("pending", "failed")


class RequestNotFound(LookupError):
    """No consultation request has this reference."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"No consultation request {reference}")
        self.reference = reference


@dataclass(frozen=True)
class ConsultationRequest:
    """What the consultation form collected; invalid values are refused on creation."""

    conversation_id: str
    channel: str
    name: str
    phone: str  # E.164
    email: Optional[str]
    help_with: str  # verbatim
    best_times: str  # verbatim
    consent_to_contact: bool
    consent_at: Optional[datetime]  # timezone-aware; required with consent

    def __post_init__(self) -> None:
        problem = record_problem(self, consultation_requests) or _consultation_problem(self)
        if problem:
            raise ValueError(f"invalid consultation request: {problem}")


@dataclass(frozen=True)
class HandoffRequest:
    """A visitor's request to talk to a person of the clinic, and how to reach them."""

    conversation_id: str
    channel: str
    name: Optional[str]
    contact: str  # E.164 phone number or e-mail address
    contact_kind: str  # "phone" or "email"
    reason: str  # verbatim
    created_at: datetime  # timezone-aware

    def __post_init__(self) -> None:
        problem = record_problem(self, handoff_requests) or _contact_problem(self.contact_kind, self.contact)
        if problem:
            raise ValueError(f"invalid handoff request: {problem}")


@dataclass(frozen=True)
class StoredRequest:
    """A stored consultation request with its delivery state, as staff see it."""

    reference: str
    status: str  # one of REQUEST_STATUSES
    created_at: datetime
    delivered_at: Optional[datetime]
    contacted_at: Optional[datetime]
    request: ConsultationRequest
    delivery_status: str  # one of DELIVERY_STATUSES
    attempts: int
    last_error: Optional[str]
    next_attempt_at: Optional[datetime]  # None once delivered


@dataclass(frozen=True)
class OutboxEntry:
    """A consultation request to post to the clinic's webhook."""

    id: int
    reference: str
    idempotency_key: str
    payload: str  # JSON, to post byte for byte
    attempts: int


def _consultation_problem(request: ConsultationRequest) -> Optional[str]:
    problem = _contact_problem("phone", request.phone)
    if not problem and request.email is not None:
        problem = _contact_problem("email", request.email)
    if not problem and request.consent_to_contact and request.consent_at is None:
        problem = "consent_at is required when consent_to_contact is true"
    return problem


def _contact_problem(kind: str, value: str) -> Optional[str]:
    # The value itself stays out of the message: contact data is never logged.
    if kind == "phone" and not _is_e164(value):
        return "phone number must be valid and in E.164 format"
    if kind == "email" and not _is_email(value):
        return "e-mail address is not valid"
    return None


def _is_e164(value: str) -> bool:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.is_valid_number(number) and e164 == value


def _is_email(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def new_reference() -> str:
    """A random reference such as "CR-7K3P"; unique only once stored (``submit_consultation`` retries)."""
    return "CR-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def submit_consultation(engine: Engine, request: ConsultationRequest, now: datetime) -> str:
    """Store ``request`` and its outbox entry in one transaction and return its reference.

    The same conversation submitted again returns the first reference and writes nothing.
    """
    now = utc(now)
    existing = _reference_for(engine, request.conversation_id)
    if existing:
        return existing
    error = None
    for _ in range(_REFERENCE_TRIES):
        reference = new_reference()
        try:
            _insert(engine, reference, request, now)
            return reference
        except IntegrityError as refused:
            # Submitted meanwhile by a concurrent call (the unique conversation_id), or the reference is taken.
            existing = _reference_for(engine, request.conversation_id)
            if existing:
                return existing
            error = refused
    raise error


def _reference_for(engine: Engine, conversation_id: str) -> Optional[str]:
    query = select(consultation_requests.c.reference).where(consultation_requests.c.conversation_id == conversation_id)
    with begin(engine) as connection:
        return connection.execute(query).scalar_one_or_none()


def _insert(engine: Engine, reference: str, request: ConsultationRequest, now: datetime) -> None:
    row = {**to_row(request), "reference": reference, "status": "new", "created_at": now}
    entry = {
        "idempotency_key": reference,
        "payload": _payload(reference, request, now),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    # Starts with a write, so concurrent SQLite writers wait for each other instead of failing.
    with begin(engine) as connection:
        request_id = connection.execute(consultation_requests.insert().values(row)).inserted_primary_key[0]
        connection.execute(outbox.insert().values({**entry, "request_id": request_id}))


def _payload(reference: str, request: ConsultationRequest, created_at: datetime) -> str:
    values = {**to_row(request), "reference": reference, "created_at": created_at}
    return json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}, sort_keys=True)


def due_deliveries(engine: Engine, now: datetime, limit: int = 20) -> List[OutboxEntry]:
    """Undelivered outbox entries whose next attempt is due at ``now``, longest waiting first."""
    query = (
        select(
            outbox.c.id,
            consultation_requests.c.reference,
            outbox.c.idempotency_key,
            outbox.c.payload,
            outbox.c.attempts,
        )
        .join_from(outbox, consultation_requests)
        .where(outbox.c.status.in_(_UNDELIVERED), outbox.c.next_attempt_at <= utc(now))
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
    )
    with begin(engine) as connection:
        return [OutboxEntry(**row._asdict()) for row in connection.execute(query)]


def mark_delivered(engine: Engine, entry_id: int, now: datetime) -> None:
    """The clinic received the outbox entry ``entry_id``: it and its request are delivered."""
    now = utc(now)
    requests = consultation_requests
    with begin(engine) as connection:
        entry = _entry(connection, entry_id)
        if entry.status == "delivered":
            return
        # attempts counts every try, the one that succeeded included
        connection.execute(
            outbox.update()
            .where(outbox.c.id == entry_id)
            .values(status="delivered", delivered_at=now, attempts=outbox.c.attempts + 1)
        )
        # A request staff already marked contacted stays contacted.
        status = case((requests.c.status == "new", "delivered"), else_=requests.c.status)
        connection.execute(
            requests.update().where(requests.c.id == entry.request_id).values(status=status, delivered_at=now)
        )


def mark_attempt_failed(engine: Engine, entry_id: int, error: str, next_attempt_at: datetime) -> None:
    """An attempt to deliver ``entry_id`` failed with ``error``: count it and wait until ``next_attempt_at``."""
    values = {
        "status": "failed",
        "attempts": outbox.c.attempts + 1,
        "last_error": error,
        "next_attempt_at": utc(next_attempt_at),
    }
    with begin(engine) as connection:
        if _entry(connection, entry_id).status != "delivered":
            connection.execute(outbox.update().where(outbox.c.id == entry_id).values(values))


def _entry(connection: Connection, entry_id: int) -> Row:
    query = select(outbox.c.request_id, outbox.c.status).where(outbox.c.id == entry_id)
    entry = connection.execute(query).first()
    if entry is None:
        raise LookupError(f"no outbox entry {entry_id}")
    return entry


def list_requests(engine: Engine, status: Optional[str] = None) -> List[StoredRequest]:
    """The consultation requests, newest first; only those with ``status`` if given."""
    query = _stored_requests().order_by(consultation_requests.c.created_at.desc(), consultation_requests.c.id.desc())
    if status is not None:
        if status not in REQUEST_STATUSES:
            raise ValueError(f"status {status!r} is not one of {REQUEST_STATUSES}")
        query = query.where(consultation_requests.c.status == status)
    with begin(engine) as connection:
        return [_stored(row) for row in connection.execute(query)]


def get_request(engine: Engine, reference: str) -> StoredRequest:
    """The consultation request ``reference``; ``RequestNotFound`` if there is none."""
    query = _stored_requests().where(consultation_requests.c.reference == reference)
    with begin(engine) as connection:
        row = connection.execute(query).first()
    if row is None:
        raise RequestNotFound(reference)
    return _stored(row)


def _stored_requests() -> Select:
    return select(
        consultation_requests,
        outbox.c.status.label("delivery_status"),
        outbox.c.attempts,
        outbox.c.last_error,
        outbox.c.next_attempt_at,
    ).join_from(consultation_requests, outbox)


def _stored(row: Row) -> StoredRequest:
    values = from_row(row)
    delivered = values["delivery_status"] == "delivered"
    return StoredRequest(
        reference=values["reference"],
        status=values["status"],
        created_at=values["created_at"],
        delivered_at=values["delivered_at"],
        contacted_at=values["contacted_at"],
        request=ConsultationRequest(**{field.name: values[field.name] for field in fields(ConsultationRequest)}),
        delivery_status=values["delivery_status"],
        attempts=values["attempts"],
        last_error=values["last_error"],
        next_attempt_at=None if delivered else values["next_attempt_at"],
    )


def mark_contacted(engine: Engine, reference: str, now: datetime) -> None:
    """Staff contacted the visitor of request ``reference``; the first time it was marked is kept.

    The first time also adds a "contacted" status event (actor "command line") for the staff console.
    """
    now = utc(now)
    requests = consultation_requests
    with begin(engine) as connection:
        request_id = _request_id(connection, reference)
        marked = connection.execute(
            requests.update()
            .where(requests.c.id == request_id, requests.c.contacted_at.is_(None))
            .values(status="contacted", contacted_at=now)
        ).rowcount
        if marked:
            row = {"request_kind": "consultation", "request_id": request_id, "status": "contacted"}
            connection.execute(request_status_events.insert().values(**row, actor="command line", at=now))


def retry_delivery(engine: Engine, reference: Optional[str], now: datetime) -> int:
    """Make the undelivered outbox entries due at ``now`` (only request ``reference``'s if given); how many."""
    query = outbox.update().where(outbox.c.status != "delivered").values(next_attempt_at=utc(now))
    with begin(engine) as connection:
        if reference is not None:
            query = query.where(outbox.c.request_id == _request_id(connection, reference))
        return connection.execute(query).rowcount


def _request_id(connection: Connection, reference: str) -> int:
    query = select(consultation_requests.c.id).where(consultation_requests.c.reference == reference)
    request_id = connection.execute(query).scalar_one_or_none()
    if request_id is None:
        raise RequestNotFound(reference)
    return request_id


def record_handoff(engine: Engine, handoff: HandoffRequest) -> int:
    """Store ``handoff`` and return its id."""
    with begin(engine) as connection:
        return connection.execute(handoff_requests.insert().values(to_row(handoff))).inserted_primary_key[0]


def handoffs_for(engine: Engine, conversation_id: str) -> List[HandoffRequest]:
    """The conversation's handoff requests, oldest first."""
    query = (
        select(*[handoff_requests.c[field.name] for field in fields(HandoffRequest)])
        .where(handoff_requests.c.conversation_id == conversation_id)
        .order_by(handoff_requests.c.created_at, handoff_requests.c.id)
    )
    with begin(engine) as connection:
        return [HandoffRequest(**from_row(row)) for row in connection.execute(query)]
