"""Signed, unguessable session tokens for the website widget.

The browser gets ``<session id>.<HMAC-SHA256 of it>``; only a token this
server signed resumes a conversation, so knowing or guessing another
visitor's session id is not enough to read their replies.
"""

import hashlib
import hmac
import secrets
from typing import Optional


class SessionTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def new_session_id(self) -> str:
        return secrets.token_hex(16)

    def sign(self, session_id: str) -> str:
        return f"{session_id}.{self._mac(session_id)}"

    def verify(self, token: object) -> Optional[str]:
        """The session id ``token`` was signed for, or None for anything else."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 200:
            return None
        session_id, mac = token.split(".")
        if session_id and hmac.compare_digest(mac, self._mac(session_id)):
            return session_id
        return None

    def _mac(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()
