"""Sends SMS replies through Twilio's REST API without blocking the event loop.

twilio-python's own async client (aiohttp) does the HTTP; this adds bounded retries with exponential backoff
on what may pass (network errors, 429, 5xx), a timeout per attempt, logs that never hold a full phone number
or message text, and a hook so a reply that could not be sent is recorded for staff rather than lost.
"""

import asyncio
import logging
from typing import Awaitable, Callable, Optional, Tuple

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageList

from clinic_assistant.logs import mask_number

logger = logging.getLogger(__name__)

# Awaited with (to, body, reason) once a message is given up on.
FailureHook = Callable[[str, str, str], Awaitable[None]]


class SmsSender:
    """Sends SMS from ``from_number``; concurrent sends share one HTTP session, used and closed in one loop."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base_url: Optional[str] = None,
        attempts: int = 3,
        backoff: float = 0.5,
        on_failure: Optional[FailureHook] = None,
        timeout: float = 15.0,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.account_sid = account_sid
        self.from_number = from_number
        self.api_base_url = api_base_url  # None: Twilio itself; tests point it at a local fake
        self.attempts = attempts
        self.backoff = backoff
        self.on_failure = on_failure
        self.timeout = timeout  # per attempt: twilio's async client sets none, so a stalled socket would hang
        self._auth_token = auth_token
        self._http: Optional[AsyncTwilioHttpClient] = None
        self._client: Optional[Client] = None

    async def send(self, to: str, body: str) -> Optional[str]:
        """The Twilio message SID, or None once every allowed attempt failed (logged, and ``on_failure`` told)."""
        for attempt in range(1, self.attempts + 1):
            sid, reason, retryable = await self._attempt(to, body)
            if sid:
                return sid
            logger.warning(
                "SMS to %s failed, attempt %d/%d: %s%s",
                mask_number(to), attempt, self.attempts, reason, "" if retryable else " (not retryable)",
            )
            if not retryable or attempt == self.attempts:
                break
            await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        await self._give_up(to, body, attempt, reason)
        return None

    async def close(self) -> None:
        """Close the HTTP session; a later ``send`` opens a new one."""
        if self._http:
            await self._http.close()
        self._http = self._client = None

    async def _attempt(self, to: str, body: str) -> Tuple[Optional[str], str, bool]:
        """One try: (SID, "", False) when sent, else (None, why, whether another try may succeed)."""
        try:
            message = await asyncio.wait_for(
                self._messages().create_async(to=to, from_=self.from_number, body=body), self.timeout
            )
            return message.sid, "", False
        except TwilioRestException as error:
            # Twilio's message may quote the number, so only the status and code are kept.
            return None, f"HTTP {error.status}, Twilio error {error.code}", error.status == 429 or error.status >= 500
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            return None, f"network error: {type(error).__name__}", True
        except Exception as error:  # e.g. an unreadable answer: it may have been sent, so no retry, but recorded
            return None, f"unexpected error: {type(error).__name__}", False

    def _messages(self) -> MessageList:
        # Created lazily: AsyncTwilioHttpClient opens its aiohttp session at once, which must be in the running loop.
        if self._client is None:
            self._http = AsyncTwilioHttpClient()
            self._client = Client(self.account_sid, self._auth_token, http_client=self._http)
            if self.api_base_url:
                self._client.api.base_url = self.api_base_url  # the Domain every Messages URL is built on
                # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite the host to *.twilio.com.
                self._client.edge = self._client.region = None
        return self._client.messages

    async def _give_up(self, to: str, body: str, attempts: int, reason: str) -> None:
        plural = "" if attempts == 1 else "s"
        logger.error("SMS reply to %s not sent after %d attempt%s: %s", mask_number(to), attempts, plural, reason)
        if self.on_failure is None:
            return
        try:
            await self.on_failure(to, body, reason)
        except Exception as error:  # the hook's trouble must not become the caller's
            logger.error("Recording the unsent SMS to %s failed: %s", mask_number(to), type(error).__name__)
