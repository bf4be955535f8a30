"""Signed, unguessable session tokens for the website widget.

The browser gets ``<session id>.<issued at>.<HMAC-SHA256 of both>``; only a token this server signed resumes a
conversation, so knowing or guessing another visitor's session id is not enough to read their replies. The time
it was issued lets the channel refuse a token nobody has used for too long.
"""

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Optional

_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})\.([0-9a-f]{64})")


@dataclass(frozen=True)
class VerifiedToken:
    session_id: str
    issued_at: float  # seconds since the epoch


class SessionTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def new_session_id(self) -> str:
        return secrets.token_hex(16)

    def sign(self, session_id: str, issued_at: Optional[float] = None) -> str:
        issued = str(int(time.time() if issued_at is None else issued_at))
        return f"{session_id}.{issued}.{self._mac(session_id, issued)}"

    def verify(self, token: object) -> Optional[VerifiedToken]:
        """What ``token`` was signed for, or None for anything this server did not sign."""
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if not match:
            return None
        session_id, issued, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(session_id, issued)):
            return None
        return VerifiedToken(session_id, float(issued))

    def _mac(self, session_id: str, issued: str) -> str:
        return hmac.new(self._secret, f"{session_id}.{issued}".encode(), hashlib.sha256).hexdigest()
