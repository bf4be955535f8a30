"""One text in, the assistant's reply out: kept first, then keywords, consent, numbered choices, media, Rasa.

Twilio expects its webhook answered within 15 seconds, and a turn with its replies (sent with retries) can take
longer, so each text is kept in the clinic database before anything else, the webhook is answered at once, and
the text is handled in the background. It is marked handled only after its turn and replies; a turn that fails,
or a process that dies halfway, leaves it to be tried again (``SMS_RETRY_SECONDS``, up to ``SMS_TURN_ATTEMPTS``
tries) and listed for staff meanwhile: a text, possibly a crisis, is never lost. Texts of one number are handled
one at a time, in the order they came.

Every number's STOP and START is kept; an opted-out number is sent nothing but the single STOP
confirmation, though what it texts still reaches the assistant (so staff see a crisis in the
transcript and its flag). If the clinic database cannot be read, replies are still sent: Twilio
itself refuses to deliver to a number that texted STOP, so no opted-out number is texted.
"""

import asyncio
import hashlib
import hmac
import logging
import weakref
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, List, Set, Tuple

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
from clinic_assistant.store.sms import InboundText

logger = logging.getLogger(__name__)

# Twilio delivers at most 1,600 characters in one text; anything longer was not sent by a phone.
MAX_BODY_LENGTH = 1600


class SmsCollector(CollectingOutputChannel):
    """Collects a turn's messages; named after the channel so Rasa picks responses' SMS variants."""

    @classmethod
    def name(cls) -> str:
        return "twilio_sms"


class Texting:
    def __init__(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        channel: str,
        engine: Engine,
        sender: SmsSender,
        conversation_secret: bytes,
        max_segments: int,
        retry_seconds: float = 30,
        max_attempts: int = 5,
        claim_lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.on_new_message = on_new_message
        self.channel = channel
        self.engine = engine
        self.sender = sender
        self.conversation_secret = conversation_secret
        self.max_segments = max_segments
        self.retry_seconds = retry_seconds
        self.max_attempts = max_attempts
        self.claim_lease = claim_lease
        self._turns: Set[asyncio.Task] = set()  # held, so a running turn is not garbage-collected
        self._numbers: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

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
        return cls(
            on_new_message, channel, engine, sender, secret, settings.SMS_MAX_SEGMENTS,
            settings.SMS_RETRY_SECONDS, settings.SMS_TURN_ATTEMPTS, timedelta(seconds=settings.SMS_CLAIM_LEASE_SECONDS),
        )

    def conversation_id(self, phone: str) -> str:
        return conversation_id(self.conversation_secret, phone)

    def inbound(self, message_sid: str, phone: str, body: str, media: int) -> InboundText:
        return InboundText(message_sid, self.conversation_id(phone), phone, body, media)

    async def receive(self, text: InboundText) -> None:
        """Keep the text, then handle it in the background; returns as soon as it is kept."""
        if not await _store(store.receive, self.engine, text, _now(), default=True):
            logger.info("SMS %s already answered (Twilio sent it again)", text.message_sid)
            return
        turn = asyncio.create_task(self.handle(text))
        self._turns.add(turn)
        turn.add_done_callback(self._turns.discard)

    async def handle(self, text: InboundText) -> None:
        """Answer one kept text, unless it is answered or being answered already."""
        async with self._number_lock(text.phone):
            if not await _store(store.claim, self.engine, text.message_sid, _now(), self.claim_lease, default=True):
                return
            try:
                await self._answer_text(text)
            except Exception as error:
                await self._failed(text, error)
                return
            await _store(store.mark_handled, self.engine, text.message_sid, _now())

    async def retry_due(self) -> int:
        """Handle the texts whose turn failed or was left by a process that died; how many were due."""
        due = await _store(store.due, self.engine, _now(), self.claim_lease, self.max_attempts, default=[])
        for text in due:
            await self.handle(text)
        return len(due)

    async def run_retries(self) -> None:
        """Look for texts to try again, every ``retry_seconds``, until cancelled."""
        while True:
            try:
                await self.retry_due()
            except Exception:
                logger.exception("Retrying texts failed; trying again later")
            await asyncio.sleep(self.retry_seconds)

    async def _answer_text(self, text: InboundText) -> None:
        opted_out = await self._opted_out(text.phone)
        keyword = None if text.media else keyword_in(text.body, opted_out)
        if keyword:
            await self._keyword(keyword, text.phone, text.body, opted_out)
            return
        texts, choices = await self._answer(text)
        await _store(store.offer_choices, self.engine, text.conversation_id, [p for _, p in choices], _now())
        if opted_out:
            logger.info("Reply to %s withheld: the number opted out", mask_number(text.phone))
            return
        await self._send(text.phone, texts, [title for title, _ in choices])

    async def _failed(self, text: InboundText, error: Exception) -> None:
        attempts = await _store(store.attempts, self.engine, text.message_sid, default=1)
        logger.error(
            "The assistant failed on a text from %s (try %d of %d)",
            mask_number(text.phone), attempts, self.max_attempts, exc_info=error,
        )
        retry_at = _now() + timedelta(seconds=self.retry_seconds * 2 ** (attempts - 1))
        await _store(store.mark_failed, self.engine, text.message_sid, type(error).__name__, retry_at)
        if attempts == 1:  # one apology, not one per try
            await self.sender.send(text.phone, replies.FAILED.format(contact=load_profile().contact_line()))

    def _number_lock(self, phone: str) -> asyncio.Lock:
        lock = self._numbers.get(phone)
        if lock is None:
            lock = self._numbers[phone] = asyncio.Lock()
        return lock

    async def _answer(self, inbound: InboundText) -> Tuple[List[str], List[Tuple[str, str]]]:
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
        await self.on_new_message(message)
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
