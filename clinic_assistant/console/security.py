"""The console's security: headers, the encrypted session cookie, login required, idle expiry, CSRF, roles.

Middlewares (outermost first): ``security_headers``, aiohttp_session's, ``authentication``; then the
views. Views get the staff member with ``current_user(request)``, guard admin pages with
``require_role("admin")`` and put ``csrf_token(request)`` in every form (templates have it as
``csrf_token``, with ``user``, through ``template_context``).
"""

import asyncio
import functools
import hmac
import math
import secrets
import time
from collections import deque
from hashlib import sha256
from typing import Any, Awaitable, Callable, Deque, Dict, Optional, Tuple
from urllib.parse import urlencode

import aiohttp_session
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from clinic_assistant import settings
from clinic_assistant.console import keys
from clinic_assistant.local_secrets import local_secret
from clinic_assistant.store.db import StoreUnavailable
from clinic_assistant.store.staff import StaffUser, normalise_username, session_user

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE_NAME = "clinic_console"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # for browsers without frame-ancestors
    # Pages show patients' words: no copy in the browser's or a proxy's cache.
    "Cache-Control": "no-store",
}
# Reachable without logging in: the login page (GET shows it, POST logs in), the stylesheet, the health and
# readiness checks.
PUBLIC_RESOURCES = frozenset({"/login", "/healthz", "/readyz", "/static"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_USER = "console.user"  # request key: the logged-in StaffUser


def session_key(secret: Optional[str] = None) -> bytes:
    """The 32-byte key that encrypts the session cookie (Fernet), from CONSOLE_SESSION_KEY or var/."""
    return sha256(local_secret("console-session-key", secret or settings.CONSOLE_SESSION_KEY)).digest()


def session_storage(key: bytes, secure: bool) -> EncryptedCookieStorage:
    """The encrypted session cookie: a browser-session cookie (no max_age); idle expiry is checked here."""
    return EncryptedCookieStorage(key, cookie_name=COOKIE_NAME, httponly=True, samesite="Strict", secure=secure)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:  # redirects and errors carry them too
        error.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is logged in (ending idle or revoked sessions); login required except on public routes; CSRF."""
    session = await aiohttp_session.get_session(request)
    try:
        user, expired = await _logged_in_user(request, session)
        if user is None and not _is_public(request):
            raise _unauthenticated(request, expired)
        if request.method not in SAFE_METHODS:
            await _check_csrf(request, session)
        return await handler(request)
    except StoreUnavailable:
        # Said plainly rather than as a crash; the details are in the exception, not for the browser.
        raise web.HTTPServiceUnavailable(text="The clinic database is unavailable. Try again in a minute.") from None


async def _logged_in_user(
    request: web.Request, session: aiohttp_session.Session
) -> Tuple[Optional[StaffUser], bool]:
    """The session's staff member, or None; True with None when the session just expired."""
    user_id = session.get("uid")
    if user_id is None:
        return None, False
    app = request.app
    now = app[keys.CLOCK]()
    if now - session.get("seen", 0) > app[keys.SETTINGS].idle_minutes * 60:
        session.invalidate()
        return None, True
    if app[keys.ENDED_SESSIONS].ended(session.get("sid"), now):  # a copy of a cookie from before a logout
        session.invalidate()
        return None, False
    found = await asyncio.to_thread(session_user, app[keys.CLINIC], user_id)
    # A deleted or deactivated account, or a changed password, ends the session at once.
    if found is None or not found[0].active or found[1] != session.get("stamp"):
        session.invalidate()
        return None, False
    user = found[0]
    session["seen"] = int(now)
    session["role"] = user.role
    request[_USER] = user
    return user, False


def _is_public(request: web.Request) -> bool:
    # By the matched resource, not the path string, so no spelling of a path slips through.
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical in PUBLIC_RESOURCES


def _unauthenticated(request: web.Request, expired: bool) -> web.HTTPException:
    if request.method in ("GET", "HEAD"):
        query = {"expired": "1"} if expired else {}
        if request.path != "/":
            query["next"] = request.path_qs
        return web.HTTPFound("/login" + (f"?{urlencode(query)}" if query else ""))
    return web.HTTPUnauthorized(text="Log in first.")


async def _check_csrf(request: web.Request, session: aiohttp_session.Session) -> None:
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = (await request.post()).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise web.HTTPForbidden(text="This form expired or came from another site: reload the page and try again.")


def start_session(request: web.Request, user: StaffUser, stamp: str) -> None:
    """A new session for ``user`` who just logged in: nothing of the old one is kept (no fixation)."""
    session = request[aiohttp_session.SESSION_KEY]
    session.invalidate()
    session.update(
        uid=user.id,
        role=user.role,
        stamp=stamp,
        seen=int(request.app[keys.CLOCK]()),
        csrf=secrets.token_urlsafe(32),
        sid=secrets.token_urlsafe(16),
    )
    request[_USER] = user


def end_session(request: web.Request) -> None:
    """Log out: the cookie is cleared, and a copy of it kept elsewhere is refused too."""
    session = request[aiohttp_session.SESSION_KEY]
    app = request.app
    if "sid" in session:
        # Until it would have expired anyway; after that the idle check refuses it.
        app[keys.ENDED_SESSIONS].end(session["sid"], app[keys.CLOCK]() + app[keys.SETTINGS].idle_minutes * 60)
    session.invalidate()
    request.pop(_USER, None)


def current_user(request: web.Request) -> StaffUser:
    """The logged-in staff member (every non-public route has one)."""
    user = request.get(_USER)
    if user is None:
        raise web.HTTPUnauthorized(text="Log in first.")
    return user


def logged_in_user(request: web.Request) -> Optional[StaffUser]:
    """The logged-in staff member, or None (on public routes)."""
    return request.get(_USER)


def require_role(role: str) -> Callable[[Handler], Handler]:
    """A view decorator: 403 unless the staff member has ``role`` (admins may do everything)."""

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            if current_user(request).role not in (role, "admin"):
                raise web.HTTPForbidden(text=f"Only staff with the {role} role may do this.")
            return await handler(request)

        return guarded

    return decorator


def csrf_token(request: web.Request) -> str:
    """The session's CSRF token, created on first use; every form posts it as ``csrf_token``."""
    session = request[aiohttp_session.SESSION_KEY]
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


async def template_context(request: web.Request) -> Dict[str, Any]:
    """What every template gets: ``user`` (None when logged out), ``csrf_token``, ``current_path``."""
    user = request.get(_USER)
    session = request.get(aiohttp_session.SESSION_KEY)
    # No token is made for logged-out requests (no cookie on the health check); the login view makes its own.
    token = csrf_token(request) if user else (session or {}).get("csrf", "")
    return {"user": user, "csrf_token": token, "current_path": request.path}


class LoginRateLimiter:
    """At most ``attempts`` login attempts per client address in ``window_seconds``, in memory.

    Behind a reverse proxy every client has the proxy's address: the limit is then for all of them together.
    """

    def __init__(self, attempts: int = 20, window_seconds: float = 300, clock: Callable[[], float] = time.time) -> None:
        self.attempts = attempts
        self.window_seconds = window_seconds
        self._clock = clock
        self._recent: Dict[str, Deque[float]] = {}

    def allow(self, client: str) -> bool:
        """Count an attempt from ``client``; False (not counted) if it has made too many."""
        now = self._clock()
        if len(self._recent) > 10_000:
            self._forget_old(now)
        recent = self._recent.setdefault(client, deque())
        while recent and recent[0] <= now - self.window_seconds:
            recent.popleft()
        if len(recent) >= self.attempts:
            return False
        recent.append(now)
        return True

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again."""
        recent = self._recent.get(client)
        if not recent:
            return 0
        return max(1, int(recent[0] + self.window_seconds - self._clock()) + 1)

    def _forget_old(self, now: float) -> None:
        self._recent = {c: r for c, r in self._recent.items() if r and r[-1] > now - self.window_seconds}


class LoginBackoff:
    """Failed logins per (username, client address): after ``free`` failures in a row, each further try waits
    ``base ** k`` seconds (k = failures beyond the free ones), at most ``max_seconds``; in memory, per process.

    Never per account alone: a stranger failing on purpose from one address slows only that address's tries of
    that username, and staff still log in from theirs. Unknown usernames are counted like known ones, so the
    waits tell nothing about which exist; they are kept as keyed hashes, since what was typed as a username may
    be a password typed in the wrong box. A success, or ``reset_seconds`` without a failure, forgets the count.
    """

    MAX_ENTRIES = 10_000  # bounds the memory a flood of usernames and addresses can take

    def __init__(
        self,
        free: Optional[int] = None,
        base: Optional[float] = None,
        max_seconds: Optional[float] = None,
        reset_seconds: Optional[float] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.free = settings.CONSOLE_LOGIN_ATTEMPTS if free is None else free
        self.base = settings.CONSOLE_LOGIN_BACKOFF_BASE if base is None else base
        self.max_seconds = settings.CONSOLE_LOGIN_BACKOFF_MAX_SECONDS if max_seconds is None else max_seconds
        default_reset = settings.CONSOLE_LOGIN_BACKOFF_RESET_MINUTES * 60
        self.reset_seconds = default_reset if reset_seconds is None else reset_seconds
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._failures: Dict[bytes, Tuple[int, float]] = {}  # key -> (failures in a row, time of the last one)

    def wait(self, username: str, client: str) -> float:
        """Seconds before ``username`` may be tried again from ``client``; 0 when it may be now."""
        failures, last = self._count(self._key(username, client))
        return max(0.0, last + self.delay(failures) - self._clock()) if failures else 0.0

    def failed(self, username: str, client: str) -> float:
        """Count a failed login of ``username`` from ``client``; the wait it sets before the next try (0: none)."""
        now, key = self._clock(), self._key(username, client)
        failures = self._count(key)[0] + 1
        self._failures[key] = (failures, now)
        if len(self._failures) > self.MAX_ENTRIES:
            self._forget_old(now)
        return self.delay(failures)

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop(self._key(username, client), None)

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row."""
        if failures < self.free:
            return 0.0
        exponent = min(failures - self.free + 1, 64)  # past this the cap applies anyway; no float overflow
        return min(self.base**exponent, self.max_seconds)

    def _key(self, username: str, client: str) -> bytes:
        return hmac.new(self._secret, f"{normalise_username(username)}\0{client}".encode(), sha256).digest()

    def _count(self, key: bytes) -> Tuple[int, float]:
        failures, last = self._failures.get(key, (0, 0.0))
        if failures and self._clock() - last > self.reset_seconds:
            del self._failures[key]
            return 0, 0.0
        return failures, last

    def _forget_old(self, now: float) -> None:
        kept = {k: v for k, v in self._failures.items() if now - v[1] <= self.reset_seconds}
        if len(kept) > self.MAX_ENTRIES:  # still too many: keep the newest half
            kept = dict(sorted(kept.items(), key=lambda item: item[1][1])[-self.MAX_ENTRIES // 2 :])
        self._failures = kept


def wait_text(seconds: float) -> str:
    """A wait as the login page says it: "3 seconds", "15 minutes"."""
    if seconds < 120:
        whole = max(1, math.ceil(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{math.ceil(seconds / 60)} minutes"


class EndedSessions:
    """Sessions ended by logging out, until they would have expired. A cookie session lives in the browser,
    so without this list a copy of the cookie would work after logout. In memory: a restart forgets it."""

    def __init__(self) -> None:
        self._until: Dict[str, float] = {}

    def end(self, sid: str, until: float) -> None:
        self._until[sid] = until

    def ended(self, sid: Optional[str], now: float) -> bool:
        if len(self._until) > 1000:
            self._until = {s: until for s, until in self._until.items() if until > now}
        return sid is not None and self._until.get(sid, 0) > now
