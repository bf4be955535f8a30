"""The console app factory: middlewares, sessions, templates, routes, the engines and the background indexer."""

import asyncio
import logging
import time
from pathlib import Path
from typing import AsyncIterator, Callable, Optional

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web
from sqlalchemy.engine import Engine

from clinic_assistant import logs, settings
from clinic_assistant.console import keys, security
from clinic_assistant.console.display import visible
from clinic_assistant.console.indexer import index_new_events
from clinic_assistant.console.routes import setup_routes
from clinic_assistant.store.db import engine_for
from clinic_assistant.store.schema import upgrade

TEMPLATES_DIR = Path(__file__).parent / "templates"
log = logging.getLogger(__name__)


def create_app(
    tracker_url: str = settings.TRACKER_URL,
    clinic_url: str = settings.CLINIC_DATABASE_URL,
    session_key: Optional[bytes] = None,
    idle_minutes: float = settings.CONSOLE_IDLE_MINUTES,
    index_seconds: Optional[float] = settings.CONSOLE_INDEX_SECONDS,
    *,
    secure_cookie: bool = settings.CONSOLE_SECURE_COOKIE,
    clock: Callable[[], float] = time.time,
    data_dir: Path = settings.PROJECT_DIR / "data",
) -> web.Application:
    """The console. ``session_key``: 32 bytes (default: derived from CONSOLE_SESSION_KEY); ``index_seconds``
    None or 0 runs no indexer (another process does); ``clock`` gives epoch seconds (tests move it)."""
    storage = security.session_storage(session_key or security.session_key(), secure_cookie)
    # Outermost first: headers on every answer, then the session, then who is logged in.
    app = web.Application(
        middlewares=[security.security_headers, aiohttp_session.session_middleware(storage), security.authentication]
    )
    app[keys.SETTINGS] = keys.ConsoleSettings(
        tracker_url=tracker_url,
        clinic_url=clinic_url,
        idle_minutes=idle_minutes,
        index_seconds=index_seconds or None,
        secure_cookie=secure_cookie,
        data_dir=data_dir,
    )
    app[keys.CLOCK] = clock
    app[keys.LOGIN_LIMITER] = security.LoginRateLimiter(clock=clock)
    app[keys.LOGIN_BACKOFF] = security.LoginBackoff(clock=clock)
    app[keys.ENDED_SESSIONS] = security.EndedSessions()
    templates = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        context_processors=[security.template_context],
    )
    # Every template shows visitor-supplied text through it (display.py says why).
    templates.filters["visible"] = visible
    setup_routes(app)
    app.cleanup_ctx.append(_databases)
    return app


async def _databases(app: web.Application) -> AsyncIterator[None]:
    """The two engines (engine_for keeps them for the process), and the indexer while the app runs."""
    config = app[keys.SETTINGS]
    app[keys.TRACKER] = engine_for(config.tracker_url)
    app[keys.CLINIC] = engine_for(config.clinic_url)
    indexer = None
    if config.index_seconds:
        indexer = asyncio.create_task(_index_forever(app[keys.TRACKER], app[keys.CLINIC], config.index_seconds))
    yield
    if indexer:
        indexer.cancel()
        await asyncio.gather(indexer, return_exceptions=True)


async def _index_forever(tracker: Engine, clinic: Engine, every_seconds: float) -> None:
    """Index new tracker events every ``every_seconds``, until cancelled; a failure is logged and retried."""
    while True:
        try:
            while await asyncio.to_thread(index_new_events, tracker, clinic):
                pass
        except Exception as error:  # the console keeps serving; the next round retries
            # The type only: SQLAlchemy's messages carry the statement's parameters (patients' words).
            log.warning("Indexing tracker events failed (%s); retrying in %ss", type(error).__name__, every_seconds)
        await asyncio.sleep(every_seconds)


def main() -> None:
    """Serve the console on CONSOLE_HOST:CONSOLE_PORT until stopped (the clinic database migrated first)."""
    logs.configure("console")
    upgrade(settings.CLINIC_DATABASE_URL)
    log.info("Staff console at http://%s:%s/ (Ctrl-C stops it)", settings.CONSOLE_HOST, settings.CONSOLE_PORT)
    web.run_app(create_app(), host=settings.CONSOLE_HOST, port=settings.CONSOLE_PORT, print=None, access_log=None)
