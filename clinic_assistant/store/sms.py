"""Queries of the SMS channel: inbound texts and their handling, consent (STOP/START), offered choices,
undelivered replies.

Synchronous like the rest of the store; the channel calls them through ``asyncio.to_thread``.
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import List, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from clinic_assistant.store.db import begin, utc
from clinic_assistant.store.tables import sms_choices, sms_consent_events, sms_inbound, sms_undelivered


@dataclass(frozen=True)
class InboundText:
    """A text as Twilio delivered it, kept before anything is done with it."""

    message_sid: str
    conversation_id: str
    phone: str  # E.164
    body: str
    media: int  # photos or files that came with it (never fetched, never stored)


def receive(engine: Engine, text: InboundText, now: datetime) -> bool:
    """Keep a text Twilio delivered; False if it was already answered (Twilio sent it again)."""
    try:
        with begin(engine) as connection:
            connection.execute(
                sms_inbound.insert().values(
                    **asdict(text), received_at=utc(now), status="received", next_attempt_at=utc(now)
                )
            )
    except IntegrityError:
        query = select(sms_inbound.c.status).where(sms_inbound.c.message_sid == text.message_sid)
        with begin(engine) as connection:
            return connection.execute(query).scalar() != "handled"
    return True


def claim(engine: Engine, message_sid: str, now: datetime, lease: timedelta) -> bool:
    """Take a text to handle now; False if it is answered, not due yet, or another process is handling it."""
    statement = (
        update(sms_inbound)
        .where(sms_inbound.c.message_sid == message_sid, sms_inbound.c.status != "handled")
        .where(sms_inbound.c.next_attempt_at <= utc(now))
        .where(or_(sms_inbound.c.claimed_at.is_(None), sms_inbound.c.claimed_at < utc(now) - lease))
        .values(claimed_at=utc(now), attempts=sms_inbound.c.attempts + 1)
    )
    with begin(engine) as connection:
        return connection.execute(statement).rowcount == 1


def mark_handled(engine: Engine, message_sid: str, now: datetime) -> None:
    statement = update(sms_inbound).where(sms_inbound.c.message_sid == message_sid)
    with begin(engine) as connection:
        connection.execute(statement.values(status="handled", handled_at=utc(now), claimed_at=None, last_error=None))


def mark_failed(engine: Engine, message_sid: str, error: str, retry_at: datetime) -> None:
    """The turn failed: keep the text for another try at ``retry_at`` (and for staff to see meanwhile)."""
    statement = update(sms_inbound).where(sms_inbound.c.message_sid == message_sid)
    with begin(engine) as connection:
        connection.execute(
            statement.values(status="failed", claimed_at=None, last_error=error, next_attempt_at=utc(retry_at))
        )


def due(engine: Engine, now: datetime, lease: timedelta, max_attempts: int, limit: int = 20) -> List[InboundText]:
    """Texts not yet answered whose next try is due, oldest first: failed turns and turns a process left."""
    query = (
        select(sms_inbound)
        .where(sms_inbound.c.status != "handled", sms_inbound.c.attempts < max_attempts)
        .where(sms_inbound.c.next_attempt_at <= utc(now))
        .where(or_(sms_inbound.c.claimed_at.is_(None), sms_inbound.c.claimed_at < utc(now) - lease))
        .order_by(sms_inbound.c.received_at)
        .limit(limit)
    )
    with begin(engine) as connection:
        rows = connection.execute(query).all()
    return [InboundText(r.message_sid, r.conversation_id, r.phone, r.body, r.media) for r in rows]


def unanswered(engine: Engine, older_than: datetime) -> List[dict]:
    """Texts still not answered that arrived before ``older_than``, for staff, oldest first."""
    query = (
        select(sms_inbound)
        .where(sms_inbound.c.status != "handled", sms_inbound.c.received_at < utc(older_than))
        .order_by(sms_inbound.c.received_at)
    )
    with begin(engine) as connection:
        return [row._asdict() for row in connection.execute(query).all()]


def attempts(engine: Engine, message_sid: str) -> int:
    """How many times the text has been taken to handle."""
    query = select(sms_inbound.c.attempts).where(sms_inbound.c.message_sid == message_sid)
    with begin(engine) as connection:
        return connection.execute(query).scalar() or 0


def inbound_status(engine: Engine, message_sid: str) -> Optional[str]:
    query = select(sms_inbound.c.status).where(sms_inbound.c.message_sid == message_sid)
    with begin(engine) as connection:
        return connection.execute(query).scalar()


def record_consent(engine: Engine, phone: str, action: str, keyword: str, now: datetime) -> None:
    with begin(engine) as connection:
        connection.execute(
            sms_consent_events.insert().values(phone=phone, action=action, keyword=keyword, received_at=utc(now))
        )


def opted_out(engine: Engine, phone: str) -> bool:
    """Whether the number's newest consent event is a STOP."""
    query = (
        select(sms_consent_events.c.action)
        .where(sms_consent_events.c.phone == phone)
        .order_by(sms_consent_events.c.id.desc())
        .limit(1)
    )
    with begin(engine) as connection:
        return connection.execute(query).scalar() == "stop"


def offer_choices(engine: Engine, conversation_id: str, payloads: List[str], now: datetime) -> None:
    """Remember the numbered buttons just sent (none: forget the previous ones)."""
    with begin(engine) as connection:
        connection.execute(sms_choices.delete().where(sms_choices.c.conversation_id == conversation_id))
        if payloads:
            connection.execute(
                sms_choices.insert().values(
                    conversation_id=conversation_id, payloads=json.dumps(payloads), offered_at=utc(now)
                )
            )


def offered_choices(engine: Engine, conversation_id: str) -> List[str]:
    query = select(sms_choices.c.payloads).where(sms_choices.c.conversation_id == conversation_id)
    with begin(engine) as connection:
        payloads: Optional[str] = connection.execute(query).scalar()
    return json.loads(payloads) if payloads else []


def record_undelivered(engine: Engine, phone: str, body: str, reason: str, now: datetime) -> None:
    with begin(engine) as connection:
        connection.execute(
            sms_undelivered.insert().values(phone=phone, body=body, reason=reason, failed_at=utc(now))
        )


def undelivered(engine: Engine) -> List[dict]:
    with begin(engine) as connection:
        rows = connection.execute(select(sms_undelivered).order_by(sms_undelivered.c.id)).all()
    return [row._asdict() for row in rows]
