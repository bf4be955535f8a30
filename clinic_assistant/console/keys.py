"""Typed keys of what the console app keeps for its views, and the console's settings as the app was built."""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from aiohttp import web
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from clinic_assistant.console.security import EndedSessions, LoginBackoff, LoginRateLimiter


@dataclass(frozen=True)
class ConsoleSettings:
    """What ``create_app`` was given (defaults from ``clinic_assistant.settings``)."""

    tracker_url: str
    clinic_url: str
    idle_minutes: float  # a session unused this long is ended
    index_seconds: Optional[float]  # how often the indexer looks for new tracker events; None: never
    secure_cookie: bool
    data_dir: Path  # the assistant's training data (data/nlu/*.yml), for the teaching page


TRACKER = web.AppKey("tracker", Engine)  # Rasa's tracker store (read only)
CLINIC = web.AppKey("clinic", Engine)  # the clinic database
SETTINGS = web.AppKey("settings", ConsoleSettings)
# Seconds since the epoch, as time.time(); tests give a clock they can move forward.
CLOCK = web.AppKey("clock", Callable[[], float])
LOGIN_LIMITER: "web.AppKey[LoginRateLimiter]" = web.AppKey("login_limiter")
# Failed logins per (username, client address), for the exponential backoff.
LOGIN_BACKOFF: "web.AppKey[LoginBackoff]" = web.AppKey("login_backoff")
ENDED_SESSIONS: "web.AppKey[EndedSessions]" = web.AppKey("ended_sessions")
