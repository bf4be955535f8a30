"""Deliver consultation requests from the outbox to the clinic's webhook, until each one is accepted.

Each due entry is POSTed as stored, signed (``signing``), with its reference as ``Idempotency-Key``: if
the "delivered" write is lost after a 2xx, the entry goes again and the clinic can drop the repeat.
A failure is recorded with the time of the next attempt (exponential backoff, capped) and an error text
made of the HTTP status and the start of the reply, or the exception's class. Payloads hold contact data
(name, phone, e-mail): they are never logged, and are cut out of a reply that echoes them.

    python -m clinic_assistant deliver    # CLINIC_WEBHOOK_URL, CLINIC_WEBHOOK_SECRET, CLINIC_DATABASE_URL
"""

import asyncio
import json
import logging
import random
import re
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

import aiohttp
from sqlalchemy.engine import Engine
from yarl import URL

from clinic_assistant import logs, settings
from clinic_assistant.delivery.signing import signed_headers
from clinic_assistant.store.consultations import OutboxEntry, due_deliveries, mark_attempt_failed, mark_delivered
from clinic_assistant.store.db import StoreUnavailable, engine_for
from clinic_assistant.store.schema import upgrade

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10  # seconds for one POST, connecting included
ERROR_BODY_CHARS = 200  # of the clinic's reply kept in last_error
# Bytes of an error reply read: all of any plausible one, so contact data is cut out before shortening it.
_REPLY_READ_LIMIT = 65_536
_CONTACT_FIELDS = ("name", "phone", "email")
_REDACTED = "[contact]"


@dataclass(frozen=True)
class Backoff:
    """The wait after a failed attempt: ``base ** attempts`` seconds, at most ``maximum``, plus up to 10%
    jitter so entries that failed together (the clinic was down) do not all come back in the same instant."""

    base: float = settings.DELIVERY_BACKOFF_BASE
    maximum: float = settings.DELIVERY_BACKOFF_MAX

    def delay(self, attempts: int) -> timedelta:
        try:
            seconds = min(self.base**attempts, self.maximum)
        except OverflowError:  # retries never stop, so attempts can grow past what a float holds
            seconds = self.maximum
        return timedelta(seconds=seconds * (1 + random.uniform(0, 0.1)))


async def deliver_due(
    engine: Engine,
    url: str,
    secret: str,
    session: aiohttp.ClientSession,
    now: datetime,
    backoff: Optional[Backoff] = None,
) -> int:
    """Post every outbox entry due at ``now`` once and record the outcomes; returns how many were accepted."""
    backoff = backoff or Backoff()
    entries = await asyncio.to_thread(due_deliveries, engine, now)
    errors = await asyncio.gather(*(_attempt(session, url, secret, entry) for entry in entries))
    for entry, error in zip(entries, errors, strict=True):
        if error is None:
            await asyncio.to_thread(mark_delivered, engine, entry.id, now)
            logger.info("Delivered %s", entry.reference)
            continue
        attempts = entry.attempts + 1
        next_attempt_at = now + backoff.delay(attempts)
        await asyncio.to_thread(mark_attempt_failed, engine, entry.id, error, next_attempt_at)
        logger.warning(
            "Delivery of %s failed (attempt %d, next at %s): %s",
            entry.reference, attempts, next_attempt_at.isoformat(timespec="seconds"), error,
        )
    return errors.count(None)


async def _attempt(session: aiohttp.ClientSession, url: str, secret: str, entry: OutboxEntry) -> Optional[str]:
    """None if the clinic accepted ``entry`` (2xx), otherwise why not, without contact data."""
    body = entry.payload.encode()
    headers = signed_headers(body, secret, int(time.time()), entry.idempotency_key)
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            allow_redirects=False,  # a redirect must not carry contact data to another address
        ) as response:
            if 200 <= response.status < 300:
                return None
            reply = await response.content.read(_REPLY_READ_LIMIT)
    except Exception as error:  # every failure is retried; its class is all that is kept
        return type(error).__name__
    text = " ".join(_redact(reply.decode("utf-8", "replace"), entry.payload).split())
    return f"HTTP {response.status}: {text[:ERROR_BODY_CHARS]}" if text else f"HTTP {response.status}"


def _redact(text: str, payload: str) -> str:
    """``text`` without the entry's contact data: a clinic's error reply may echo the request."""
    try:
        values = json.loads(payload)
    except ValueError:
        return "(reply withheld)"  # nothing to match against, so keep nothing
    variants = set()
    for field in _CONTACT_FIELDS:
        value = values.get(field)
        if isinstance(value, str) and value.strip():
            # As sent (JSON-escaped), as typed, and a phone number without its "+".
            variants |= {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
            if field == "phone":
                variants.add(value.lstrip("+"))
    for variant in sorted(variants, key=len, reverse=True):
        text = re.sub(re.escape(variant), _REDACTED, text, flags=re.IGNORECASE)
    return text


async def run_worker(
    database_url: str,
    url: str,
    secret: str,
    poll_seconds: float,
    stop: asyncio.Event,
    backoff: Optional[Backoff] = None,
) -> None:
    """Deliver due entries every ``poll_seconds`` until ``stop`` is set; store outages are logged and waited out."""
    engine = engine_for(database_url)
    migrated = False
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            try:
                if not migrated:  # the worker may start before anything else created the tables
                    await asyncio.to_thread(upgrade, database_url)
                    migrated = True
                await deliver_due(engine, url, secret, session, datetime.now(timezone.utc), backoff)
            except StoreUnavailable as error:
                logger.warning("Clinic database unavailable, trying again in %gs: %s", poll_seconds, error)
            except Exception:
                # Keep delivering: one bad round must not stop requests reaching the clinic.
                logger.exception("Delivery round failed, trying again in %gs", poll_seconds)
            await _wait(stop, poll_seconds)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def main() -> None:
    """Deliver consultation requests to CLINIC_WEBHOOK_URL until SIGINT or SIGTERM."""
    url, secret = settings.CLINIC_WEBHOOK_URL, settings.CLINIC_WEBHOOK_SECRET
    if not url:
        sys.exit("CLINIC_WEBHOOK_URL is not set: there is no webhook to deliver consultation requests to.")
    if not secret:
        sys.exit(
            "CLINIC_WEBHOOK_URL is set but CLINIC_WEBHOOK_SECRET is not: set the secret shared with the clinic "
            "in the environment (every delivery is signed with it)."
        )
    target = URL(url)
    if target.scheme not in ("http", "https") or not target.host:
        sys.exit("CLINIC_WEBHOOK_URL must be an http:// or https:// URL with a host.")
    logs.configure("delivery")
    if target.scheme == "http" and target.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("CLINIC_WEBHOOK_URL is plain http: contact data would cross the network unencrypted.")
    asyncio.run(_serve(url, secret, target))


async def _serve(url: str, secret: str, target: URL) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # The origin only: a URL's path or query may carry a token.
    logger.info("Delivering consultation requests to %s every %gs", target.origin(), settings.DELIVERY_POLL_SECONDS)
    await run_worker(settings.CLINIC_DATABASE_URL, url, secret, settings.DELIVERY_POLL_SECONDS, stop)
    logger.info("Delivery worker stopped")
