"""Secrets for local runs: from the environment, else generated once into var/ and kept there."""

import secrets
from typing import Optional

from clinic_assistant import settings


def local_secret(name: str, from_environment: Optional[str]) -> bytes:
    """``from_environment`` when set; otherwise var/<name>, created on first use (owner-only)."""
    if from_environment:
        return from_environment.encode()
    path = settings.VAR_DIR / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip().encode()
