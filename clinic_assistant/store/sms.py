"""Queries of the SMS channel: consent (STOP/START), handled message ids, offered choices, undelivered replies.

Synchronous like the rest of the store; the channel calls them through ``asyncio.to_thread``.
"""

import json
from datetime import datetime
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from clinic_assistant.store.db import begin, utc
from clinic_assistant.store.tables import sms_choices, sms_consent_events, sms_inbound, sms_undelivered


def first_time_seen(engine: Engine, message_sid: str, now: datetime) -> bool:
    """Record Twilio's message id; False if it was already handled (Twilio retried the webhook)."""
    try:
        with begin(engine) as connection:
            connection.execute(sms_inbound.insert().values(message_sid=message_sid, received_at=utc(now)))
    except IntegrityError:
        return False
    return True


def forget_message(engine: Engine, message_sid: str) -> None:
    """Let Twilio's retry of a message be handled after all (its first handling failed)."""
    with begin(engine) as connection:
        connection.execute(sms_inbound.delete().where(sms_inbound.c.message_sid == message_sid))


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
