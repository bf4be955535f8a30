"""One text in, the assistant's reply out: keywords, consent, numbered choices, media, then Rasa.

Every number's STOP and START is kept; an opted-out number is sent nothing but the single STOP
confirmation, though what it texts still reaches the assistant (so staff see a crisis in the
transcript and its flag). If the clinic database cannot be read, replies are still sent: Twilio
itself refuses to deliver to a number that texted STOP, so no opted-out number is texted.
"""

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, List, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from sqlalchemy.engine import Engine

from clinic_assistant import settings
from clinic_assistant.clinic_profile import load_profile
from clinic_assistant.local_secrets import local_secret
from clinic_assistant.logs import mask_number
from clinic_assistant.sms import replies
from clinic_assistant.sms.keywords import keyword_in
from clinic_assistant.sms.sender import SmsSender
from clinic_assistant.sms.text import choice_number, shape_reply
from clinic_assistant.store import sms as store
from clinic_assistant.store.db import StoreUnavailable, engine_for

logger = logging.getLogger(__name__)

# Twilio delivers at most 1,600 characters in one text; anything longer was not sent by a phone.
MAX_BODY_LENGTH = 1600


class SmsCollector(CollectingOutputChannel):
    """Collects a turn's messages; named after the channel so Rasa picks responses' SMS variants."""

    @classmethod
    def name(cls) -> str:
        return "twilio_sms"


@dataclass(frozen=True)
class Inbound:
    message_sid: str
    phone: str  # E.164
    body: str
    media: int  # how many photos or files came with it (never fetched, never stored)


class Texting:
    def __init__(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        channel: str,
        engine: Engine,
        sender: SmsSender,
        conversation_secret: bytes,
        max_segments: int,
    ) -> None:
        self.on_new_message = on_new_message
        self.channel = channel
        self.engine = engine
        self.sender = sender
        self.conversation_secret = conversation_secret
        self.max_segments = max_segments

    @classmethod
    def from_settings(cls, on_new_message: Callable[[UserMessage], Awaitable[Any]], channel: str) -> "Texting":
        engine = engine_for(settings.CLINIC_DATABASE_URL)

        async def keep_undelivered(to: str, body: str, reason: str) -> None:
            await _store(store.record_undelivered, engine, to, body, reason, _now())

        sender = SmsSender(
            settings.TWILIO_ACCOUNT_SID or "",
            settings.TWILIO_AUTH_TOKEN or "",
            settings.TWILIO_FROM_NUMBER or "",
            api_base_url=settings.TWILIO_API_BASE_URL,
            attempts=settings.SMS_SEND_ATTEMPTS,
            on_failure=keep_undelivered,
        )
        secret = local_secret("sms-conversation-secret", settings.SMS_CONVERSATION_SECRET)
        return cls(on_new_message, channel, engine, sender, secret, settings.SMS_MAX_SEGMENTS)

    def conversation_id(self, phone: str) -> str:
        return conversation_id(self.conversation_secret, phone)

    async def receive(self, inbound: Inbound) -> None:
        if not await self._first_time(inbound.message_sid):
            logger.info("SMS %s already handled (Twilio retried it)", inbound.message_sid)
            return
        opted_out = await self._opted_out(inbound.phone)
        keyword = None if inbound.media else keyword_in(inbound.body, opted_out)
        if keyword:
            await self._keyword(keyword, inbound.phone, inbound.body, opted_out)
            return
        texts, choices = await self._answer(inbound)
        conversation = self.conversation_id(inbound.phone)
        await _store(store.offer_choices, self.engine, conversation, [payload for _, payload in choices], _now())
        if opted_out:
            logger.info("Reply to %s withheld: the number opted out", mask_number(inbound.phone))
            return
        await self._send(inbound.phone, texts, [title for title, _ in choices])

    async def _answer(self, inbound: Inbound) -> Tuple[List[str], List[Tuple[str, str]]]:
        """What to text back, and the (title, payload) buttons offered with it."""
        texts = [replies.MEDIA] if inbound.media else []
        body = inbound.body.strip()
        if len(body) > MAX_BODY_LENGTH:
            return [*texts, replies.TOO_LONG], []
        if not body:
            return texts or [replies.EMPTY], []
        said, choices = await self._converse(inbound.phone, body)
        return [*texts, *said], choices

    async def _converse(self, phone: str, body: str) -> Tuple[List[str], List[Tuple[str, str]]]:
        conversation = self.conversation_id(phone)
        offered = await _store(store.offered_choices, self.engine, conversation, default=[])
        chosen = choice_number(body, len(offered))
        text = offered[chosen] if chosen is not None else body
        collector = SmsCollector()
        message = UserMessage(text, collector, conversation, input_channel=self.channel, metadata={"sms_from": phone})
        try:
            await self.on_new_message(message)
        except Exception:
            logger.exception("The assistant failed on a text from %s", mask_number(phone))
            return [replies.FAILED.format(contact=load_profile().contact_line())], []
        texts = [m["text"] for m in collector.messages if m.get("text")]
        with_buttons = [m["buttons"] for m in collector.messages if m.get("buttons")]
        choices = [(b["title"], b["payload"]) for b in with_buttons[-1]] if with_buttons else []
        return texts, choices

    async def _keyword(self, keyword: str, phone: str, body: str, opted_out: bool) -> None:
        word = body.strip().rstrip(".!").upper()
        if keyword == "stop":
            await _store(store.record_consent, self.engine, phone, "stop", word, _now())
            if not opted_out:  # one confirmation, then silence
                await self.sender.send(phone, replies.stopped(load_profile()))
        elif keyword == "start":
            await _store(store.record_consent, self.engine, phone, "start", word, _now())
            await self.sender.send(phone, replies.started(load_profile()))
        elif not opted_out:
            await self.sender.send(phone, replies.help_text(load_profile()))

    async def _send(self, phone: str, texts: List[str], titles: List[str]) -> None:
        for part in shape_reply(texts, titles, self.max_segments):
            await self.sender.send(phone, part)

    async def _first_time(self, message_sid: str) -> bool:
        return await _store(store.first_time_seen, self.engine, message_sid, _now(), default=True)

    async def _opted_out(self, phone: str) -> bool:
        return await _store(store.opted_out, self.engine, phone, default=False)


def conversation_id(secret: bytes, phone: str) -> str:
    """A stable id per number that does not show the number (ids end up in logs and URLs)."""
    return "sms-" + hmac.new(secret, phone.encode(), hashlib.sha256).hexdigest()[:32]


async def _store(query: Callable, *args: Any, default: Any = None) -> Any:
    """Run a store query off the event loop; with the database down, log and go on with ``default``."""
    try:
        return await asyncio.to_thread(query, *args)
    except StoreUnavailable as error:
        logger.error("SMS store unavailable for %s: %s", query.__name__, error)
        return default


def _now() -> datetime:
    return datetime.now(timezone.utc)
