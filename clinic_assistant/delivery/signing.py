"""Sign webhook bodies so the clinic can check they come from the assistant and are fresh.

The signature is the hex HMAC-SHA256, keyed with the shared secret, of ``"{timestamp}."`` followed by
the body: binding the timestamp to the body lets the receiver refuse a captured request replayed later.
"""

import hashlib
import hmac
from typing import Dict, Union

TIMESTAMP_HEADER = "X-Clinic-Timestamp"
SIGNATURE_HEADER = "X-Clinic-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_PREFIX = "sha256="
# Seconds a signed request stays acceptable; also absorbs clock drift between the two machines.
DEFAULT_TOLERANCE = 300


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}."`` + ``body`` keyed with ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    secret: str,
    timestamp: int,
    signature: str,
    now: Union[int, float],
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """True if ``signature`` (bare hex or the ``sha256=`` header value) signs ``body`` at ``timestamp``,
    and ``timestamp`` is within ``tolerance`` seconds of ``now`` (Unix seconds)."""
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(body, secret, timestamp)
    given = signature.removeprefix(SIGNATURE_PREFIX)
    # Bytes: compare_digest refuses non-ASCII str, and a forged header may hold anything.
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def signed_headers(body: bytes, secret: str, timestamp: int, idempotency_key: str) -> Dict[str, str]:
    """Every header of a webhook delivery of ``body``."""
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: SIGNATURE_PREFIX + sign(body, secret, timestamp),
        IDEMPOTENCY_HEADER: idempotency_key,
    }
