"""The staff console's security with aiohttp's test client, on SQLite and PostgreSQL: logins, failed logins
(one answer in the same time, a backoff per username and address), sessions (idle expiry, rotation, logout,
revocation), CSRF, roles, headers, the rate limit, staff accounts.

Other console tests may log in with ``login(client, username, password)`` from here.
"""

import base64
import json
import re
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import TCPConnector, web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from sqlalchemy import select

from clinic_assistant import settings
from clinic_assistant.console import security
from clinic_assistant.console.app import create_app
from clinic_assistant.console.display import visible
from clinic_assistant.store import staff
from clinic_assistant.store.db import engine_for
from clinic_assistant.store.schema import upgrade
from clinic_assistant.store.tables import audit_log

SESSION_KEY = bytes(range(32))
PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PUBLIC = {
    ("GET", "/login"), ("HEAD", "/login"), ("POST", "/login"),
    ("GET", "/healthz"), ("HEAD", "/healthz"), ("GET", "/readyz"), ("HEAD", "/readyz"),
}


class Clock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))  # whole seconds: lockout minutes come out exact

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Staff:
    engine: object
    admin: str
    reviewer: str


@pytest.fixture
def clinic_url(clinic_db_url: str) -> str:
    upgrade(clinic_db_url)
    return clinic_db_url


@pytest.fixture
def accounts(clinic_url: str) -> Staff:
    """An admin and a reviewer, named uniquely (the PostgreSQL database is shared by the whole run)."""
    engine = engine_for(clinic_url)
    suffix = uuid.uuid4().hex[:10]
    now = datetime.now(timezone.utc)
    admin = staff.create_user(engine, f"admin-{suffix}", PASSWORD, "admin", None, now)
    reviewer = staff.create_user(engine, f"reviewer-{suffix}", PASSWORD, "reviewer", admin.username, now)
    return Staff(engine, admin.username, reviewer.username)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def console(tmp_path: Path, clinic_url: str, clock: Clock, **options: object) -> web.Application:
    return create_app(
        tracker_url=f"sqlite:///{tmp_path / 'tracker.db'}",
        clinic_url=clinic_url,
        session_key=SESSION_KEY,
        index_seconds=0,
        clock=clock,
        **options,
    )


@pytest.fixture
async def client(tmp_path, clinic_url, clock):
    async with TestClient(TestServer(console(tmp_path, clinic_url, clock))) as client:
        yield client


def token_in(html: str) -> str:
    return TOKEN.search(html).group(1)


async def login(client: TestClient, username: str, password: str, next_path: Optional[str] = None):
    """Log in as a browser does: the login form (for its CSRF token), then the POST; the answer to the POST."""
    token = token_in(await (await client.get("/login")).text())
    form = {"csrf_token": token, "username": username, "password": password}
    if next_path:
        form["next"] = next_path
    return await client.post("/login", data=form, allow_redirects=False)


async def page_token(client: TestClient, path: str = "/users") -> str:
    reply = await client.get(path)
    assert reply.status == 200, path
    return token_in(await reply.text())


def audited(engine, action: str, target: str) -> list:
    with engine.connect() as connection:
        rows = connection.execute(
            select(audit_log).where(audit_log.c.action == action, audit_log.c.target == target)
        ).all()
    return rows


def cookie_value(client: TestClient) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[security.COOKIE_NAME].value


def replace_cookie(client: TestClient, value: str) -> None:
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({security.COOKIE_NAME: value})


def session_data(client: TestClient) -> dict:
    """What the encrypted session cookie holds (the tests know the key)."""
    decrypted = Fernet(base64.urlsafe_b64encode(SESSION_KEY)).decrypt(cookie_value(client).encode())
    return json.loads(decrypted)["session"]


def redirect(reply) -> tuple:
    """Where a redirect goes: its path and its query parameters."""
    location = urlsplit(reply.headers["Location"])
    return location.path, dict(parse_qsl(location.query))


def session_cookie(reply) -> str:
    return next(h for h in reply.headers.getall("Set-Cookie") if h.startswith(f"{security.COOKIE_NAME}="))


# ---- Logging in ----


async def test_the_login_page_is_labelled_and_has_the_page_landmarks(client):
    reply = await client.get("/login")
    html = await reply.text()
    assert reply.status == 200
    assert '<html lang="en">' in html and 'class="skip-link" href="#main"' in html
    assert '<main id="main"' in html and "<header" in html
    assert '<label for="username">Username</label>' in html and 'id="username"' in html
    assert '<label for="password">Password</label>' in html and 'type="password"' in html
    assert 'autocomplete="current-password"' in html
    # Nothing the Content-Security-Policy would block.
    assert "style=" not in html and "<script" not in html and "<style" not in html
    # Logged out: no navigation and no logout button.
    assert "<nav" not in html and "/logout" not in html


async def test_a_right_password_logs_in_and_is_recorded(client, accounts):
    reply = await login(client, accounts.admin, PASSWORD)
    assert reply.status == 303 and reply.headers["Location"] == "/"
    page = await client.get("/users")
    html = await page.text()
    assert page.status == 200 and accounts.reviewer in html
    # The frame: navigation with the current page marked, who is logged in, a logout form with the token.
    assert '<nav class="site-nav" aria-label="Console">' in html
    assert '<a href="/users" aria-current="page">' in html
    assert f"<strong>{accounts.admin}</strong>" in html
    assert 'action="/logout"' in html and token_in(html)
    assert staff.get_user(accounts.engine, accounts.admin).last_login_at is not None
    assert audited(accounts.engine, "login", accounts.admin)


async def test_usernames_are_not_case_sensitive(client, accounts):
    assert (await login(client, accounts.admin.upper(), PASSWORD)).status == 303


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client, accounts):
    wrong = await login(client, accounts.admin, "not the password at all")
    unknown = await login(client, f"nobody-{uuid.uuid4().hex}", PASSWORD)
    assert wrong.status == unknown.status == 401
    wrong_html, unknown_html = await wrong.text(), await unknown.text()
    assert "Wrong username or password." in wrong_html and "Wrong username or password." in unknown_html
    assert 'role="alert"' in wrong_html and 'aria-describedby="login-error"' in wrong_html
    assert (await client.get("/users", allow_redirects=False)).status == 302  # still logged out
    # Audited: the account's failure by name; an unknown name is not recorded (it may be a mistyped password).
    assert audited(accounts.engine, "login_failed", accounts.admin)
    assert staff.get_user(accounts.engine, accounts.admin).last_login_at is None


async def test_a_deactivated_account_cannot_log_in(client, accounts):
    staff.set_active(accounts.engine, accounts.reviewer, False)
    reply = await login(client, accounts.reviewer, PASSWORD)
    assert reply.status == 401 and "Wrong username or password." in await reply.text()


async def test_logging_in_starts_a_new_session_with_a_new_token(client, accounts):
    before = await client.get("/login")
    old_token = token_in(await before.text())
    old_cookie = cookie_value(client)
    reply = await login(client, accounts.admin, PASSWORD)
    assert reply.status == 303
    new_token = await page_token(client)
    new_cookie = cookie_value(client)
    assert new_token != old_token and new_cookie != old_cookie
    # The cookie from before the login (as an attacker could have planted it) is still logged out.
    replace_cookie(client, old_cookie)
    assert (await client.get("/users", allow_redirects=False)).status == 302


async def test_after_login_the_console_returns_to_the_page_asked_for_but_never_to_another_site(client, accounts):
    reply = await client.get("/users?x=1", allow_redirects=False)
    assert reply.status == 302 and redirect(reply) == ("/login", {"next": "/users?x=1"})
    reply = await login(client, accounts.admin, PASSWORD, next_path="/users?x=1")
    assert reply.headers["Location"] == "/users?x=1"
    await client.post("/logout", data={"csrf_token": await page_token(client)})
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        reply = await login(client, accounts.admin, PASSWORD, next_path=elsewhere)
        assert reply.headers["Location"] == "/", elsewhere
        await client.post("/logout", data={"csrf_token": await page_token(client)})


async def test_logout_ends_the_session_and_a_copy_of_its_cookie(client, accounts):
    await login(client, accounts.admin, PASSWORD)
    token = await page_token(client)
    cookie = cookie_value(client)
    reply = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert reply.status == 303 and reply.headers["Location"] == "/login?out=1"
    assert "You have logged out." in await (await client.get("/login?out=1")).text()
    assert (await client.get("/users", allow_redirects=False)).status == 302
    replace_cookie(client, cookie)
    assert (await client.get("/users", allow_redirects=False)).status == 302
    assert audited(accounts.engine, "logout", accounts.admin)


# ---- Failed logins: one answer, in the same time; a backoff per username and address; the rate limit ----

WRONG = "wrong password, again"


def without(html: str, username: str) -> str:
    """The page with the username the visitor typed (echoed in the form) taken out."""
    return html.replace(f'value="{visible(username)}"', 'value=""')


async def test_an_unknown_user_an_inactive_one_and_a_wrong_password_get_identical_answers(client, accounts):
    staff.set_active(accounts.engine, accounts.reviewer, False)
    unknown, odd = f"nobody-{uuid.uuid4().hex[:8]}", f"no\x00body\u202e-{uuid.uuid4().hex[:8]}"
    answers = []
    for username, password in ((unknown, PASSWORD), (accounts.reviewer, PASSWORD), (accounts.admin, WRONG),
                               (odd, PASSWORD)):
        reply = await login(client, username, password)
        answers.append((reply.status, without(await reply.text(), username), "Retry-After" in reply.headers))
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert answers[0][0] == 401 and "Wrong username or password." in answers[0][1]


async def test_failed_logins_take_the_same_time_whoever_they_name(client, accounts, clock):
    """Median times over several tries, with the real Argon2 settings: an unknown user or an inactive one costs what
    a wrong password does (a dummy hash is verified), so timing does not tell which usernames exist. Skipping the
    verification would make them about ten times faster."""
    staff.set_active(accounts.engine, accounts.reviewer, False)
    cases = {"wrong": accounts.admin, "unknown": f"nobody-{uuid.uuid4().hex[:8]}", "inactive": accounts.reviewer}
    times = {name: [] for name in cases}
    for _ in range(9):
        for name, username in cases.items():  # one round after another: a busy moment of the machine hits all
            clock.advance(1000)  # past any backoff and the address's rate limit: only the login's own work counts
            token = token_in(await (await client.get("/login")).text())
            started = time.perf_counter()
            reply = await client.post("/login", data={"csrf_token": token, "username": username, "password": WRONG})
            times[name].append(time.perf_counter() - started)
            assert reply.status == 401
    # Each round's time against the wrong password's in the same round (other work on the machine comes and goes).
    for name in ("unknown", "inactive"):
        ratio = statistics.median(mine / wrong for mine, wrong in zip(times[name], times["wrong"], strict=True))
        assert 2 / 3 < ratio < 3 / 2, (name, ratio, times)
    # And the work is real: each answer took at least most of one Argon2 verification.
    one_hash = min(_verify_time() for _ in range(3))
    medians = {name: statistics.median(values) for name, values in times.items()}
    assert min(medians.values()) > 0.7 * one_hash, (medians, one_hash)


def _verify_time() -> float:
    hashed = PasswordHasher().hash("some staff password")  # the settings staff passwords are hashed with
    started = time.perf_counter()
    assert not staff._verify(hashed, WRONG)
    return time.perf_counter() - started


async def test_a_strangers_failures_from_one_address_do_not_keep_the_user_out_from_another(
    tmp_path, clinic_url, clock, accounts
):
    server = TestServer(console(tmp_path, clinic_url, clock))
    elsewhere = TCPConnector(local_addr=("127.0.0.2", 0))  # another loopback address: another client
    async with TestClient(server) as stranger, TestClient(server, connector=elsewhere) as colleague:
        for _ in range(settings.CONSOLE_LOGIN_ATTEMPTS):
            assert (await login(stranger, accounts.reviewer, WRONG)).status == 401
        refused = await login(stranger, accounts.reviewer, PASSWORD)  # now slowed down, even the right password
        assert refused.status == 429 and "Too many failed logins with this username" in await refused.text()
        # The reviewer, from their own address, is not: no account was locked.
        assert (await login(colleague, accounts.reviewer, PASSWORD)).status == 303
        assert (await colleague.get("/", allow_redirects=False)).status == 200
    assert audited(accounts.engine, "login_failed", accounts.reviewer)
    assert audited(accounts.engine, "login_throttled", accounts.reviewer)
    assert audited(accounts.engine, "login", accounts.reviewer)


async def test_the_backoff_doubles_after_the_free_tries_and_ends(client, accounts, clock):
    for _ in range(settings.CONSOLE_LOGIN_ATTEMPTS):
        assert (await login(client, accounts.admin, WRONG)).status == 401
    waits = []
    for _ in range(3):
        refused = await login(client, accounts.admin, PASSWORD)
        assert refused.status == 429
        waits.append(int(refused.headers["Retry-After"]))
        assert f"Try again in {waits[-1]} seconds." in await refused.text()
        clock.advance(waits[-1])
        assert (await login(client, accounts.admin, WRONG)).status == 401  # allowed again, and wrong again
    assert waits == [2, 4, 8]
    clock.advance(16)
    assert (await login(client, accounts.admin, PASSWORD)).status == 303  # the wait ended
    await client.post("/logout", data={"csrf_token": await page_token(client)})
    # The success started the count again: the free tries are back.
    for _ in range(settings.CONSOLE_LOGIN_ATTEMPTS - 1):
        assert (await login(client, accounts.admin, WRONG)).status == 401
    assert (await login(client, accounts.admin, PASSWORD)).status == 303


async def test_an_unknown_username_is_slowed_down_exactly_like_a_known_one(client, accounts):
    unknown = f"nobody-{uuid.uuid4().hex[:8]}"
    answers = []
    for username in (accounts.admin, unknown):
        for _ in range(settings.CONSOLE_LOGIN_ATTEMPTS):
            await login(client, username, WRONG)
        reply = await login(client, username, WRONG)
        answers.append((reply.status, reply.headers["Retry-After"], without(await reply.text(), username)))
    assert answers[0] == answers[1] and answers[0][0] == 429


def test_the_backoff_is_capped_and_forgotten_after_a_quiet_time():
    clock = Clock()
    backoff = security.LoginBackoff(free=5, base=2, max_seconds=900, reset_seconds=3600, clock=clock)
    assert [backoff.delay(n) for n in (1, 4, 5, 6, 7, 14, 15, 10_000)] == [0, 0, 2, 4, 8, 900, 900, 900]
    for _ in range(7):
        backoff.failed("Maria", "10.0.0.1")
    assert backoff.wait("maria", "10.0.0.1") == 8  # usernames are not case-sensitive
    assert backoff.wait("maria", "10.0.0.2") == 0 and backoff.wait("other", "10.0.0.1") == 0
    clock.advance(5)
    assert backoff.wait("maria", "10.0.0.1") == 3
    clock.advance(3600)
    assert backoff.wait("maria", "10.0.0.1") == 0
    assert backoff.failed("maria", "10.0.0.1") == 0  # a quiet hour: the free tries are back
    backoff.failed("maria", "10.0.0.1")
    backoff.succeeded("maria", "10.0.0.1")
    assert backoff._count(backoff._key("maria", "10.0.0.1")) == (0, 0.0)


async def test_many_login_attempts_from_one_address_are_slowed_down(client, accounts, clock):
    limiter = security.LoginRateLimiter()
    for _ in range(limiter.attempts):
        assert (await login(client, f"nobody-{uuid.uuid4().hex}", PASSWORD)).status == 401
    reply = await login(client, accounts.admin, PASSWORD)  # even the right password
    assert reply.status == 429 and int(reply.headers["Retry-After"]) > 0
    assert "Too many login attempts" in await reply.text()
    clock.advance(limiter.window_seconds + 1)
    assert (await login(client, accounts.admin, PASSWORD)).status == 303


# ---- Sessions ----


async def test_a_session_unused_for_the_idle_time_ends(client, accounts, clock):
    await login(client, accounts.admin, PASSWORD)
    idle = settings.CONSOLE_IDLE_MINUTES * 60
    clock.advance(idle - 5)
    assert (await client.get("/users")).status == 200
    clock.advance(idle - 5)  # each request counts as activity
    assert (await client.get("/users")).status == 200
    token = await page_token(client)
    clock.advance(idle + 1)
    reply = await client.post("/users/x", data={"csrf_token": token, "change": "activate"}, allow_redirects=False)
    assert reply.status == 401
    await login(client, accounts.admin, PASSWORD)
    clock.advance(idle + 1)
    reply = await client.get("/users", allow_redirects=False)
    assert reply.status == 302 and redirect(reply) == ("/login", {"expired": "1", "next": "/users"})
    page = await (await client.get(reply.headers["Location"])).text()
    assert f"Your session ended after {settings.CONSOLE_IDLE_MINUTES} minutes without activity." in page
    assert redirect(await client.get("/users", allow_redirects=False)) == ("/login", {"next": "/users"})


async def test_the_idle_time_is_the_apps_setting(tmp_path, clinic_url, clock, accounts):
    async with TestClient(TestServer(console(tmp_path, clinic_url, clock, idle_minutes=1))) as client:
        await login(client, accounts.admin, PASSWORD)
        clock.advance(61)
        assert (await client.get("/users", allow_redirects=False)).status == 302


async def test_deactivating_an_account_or_changing_its_password_ends_its_sessions(client, accounts):
    second_admin = staff.create_user(
        accounts.engine, f"other-{uuid.uuid4().hex[:10]}", PASSWORD, "admin", None, datetime.now(timezone.utc)
    ).username
    await login(client, second_admin, PASSWORD)
    assert (await client.get("/users")).status == 200
    staff.set_password(accounts.engine, second_admin, "a brand new password")
    assert (await client.get("/users", allow_redirects=False)).status == 302
    await login(client, second_admin, "a brand new password")
    assert (await client.get("/users")).status == 200
    staff.set_active(accounts.engine, second_admin, False)
    assert (await client.get("/users", allow_redirects=False)).status == 302


async def test_a_role_change_applies_to_the_open_session(client, accounts):
    await login(client, accounts.reviewer, PASSWORD)
    assert (await client.get("/users", allow_redirects=False)).status == 403
    staff.set_role(accounts.engine, accounts.reviewer, "admin")
    assert (await client.get("/users")).status == 200


async def test_the_session_cookie_is_http_only_strict_and_ends_with_the_browser(client, accounts):
    anonymous = session_cookie(await client.get("/login"))
    reply = await login(client, accounts.admin, PASSWORD)
    for cookie in (anonymous, session_cookie(reply)):
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert "Max-Age" not in cookie and "expires" not in cookie.lower()
        assert "Secure" not in cookie  # CONSOLE_SECURE_COOKIE is off by default (no TLS locally)


async def test_behind_tls_the_cookie_is_secure(tmp_path, clinic_url, clock):
    async with TestClient(TestServer(console(tmp_path, clinic_url, clock, secure_cookie=True))) as client:
        assert "; Secure" in session_cookie(await client.get("/login"))


async def test_a_forged_or_tampered_cookie_is_not_a_session(client, accounts):
    await login(client, accounts.admin, PASSWORD)
    cookie = cookie_value(client)
    replace_cookie(client, cookie[:-4] + "AAAA")
    assert (await client.get("/users", allow_redirects=False)).status == 302


def test_the_session_key_is_32_bytes_derived_from_the_secret():
    key = security.session_key("a secret from the environment")
    assert len(key) == 32 and key == security.session_key("a secret from the environment")
    assert key != security.session_key("another secret")


# ---- Every route needs a login ----


def concrete_path(route: web.AbstractRoute) -> str:
    info = route.resource.get_info()
    if "path" in info:
        return info["path"]
    return re.sub(r"\{[^}]+\}", "x1", info["formatter"])


async def test_every_route_but_the_public_ones_refuses_an_unauthenticated_request(client):
    checked = 0
    for route in client.app.router.routes():
        if route.resource is None or route.resource.canonical == "/static":
            continue
        method, path = route.method, concrete_path(route)
        if (method, path) in PUBLIC:
            continue
        body = None if method in ("GET", "HEAD") else {"csrf_token": "x"}
        reply = await client.request(method, path, allow_redirects=False, data=body)
        if method in ("GET", "HEAD"):
            assert reply.status == 302, (method, path)
            assert reply.headers["Location"].startswith("/login"), (method, path)
        else:
            assert reply.status in (401, 403), (method, path)
        checked += 1
    assert checked >= 5  # logout, users (GET, POST), a user, and the views' pages


async def test_the_public_routes_are_the_login_the_health_check_and_the_stylesheet(client):
    assert (await client.get("/login")).status == 200
    health = await client.get("/healthz")
    assert health.status == 200 and await health.json() == {"status": "ok"}
    assert "Set-Cookie" not in health.headers  # no session for probes
    css = await client.get("/static/console.css")
    assert css.status == 200 and ":focus-visible" in await css.text()


# ---- Roles and CSRF ----


async def test_a_reviewer_can_neither_see_nor_change_staff_accounts(client, accounts):
    await login(client, accounts.reviewer, PASSWORD)
    assert (await client.get("/users")).status == 403
    token = session_data(client)["csrf"]  # what the frame of the reviewer's pages puts in their forms
    new_name = f"intruder-{uuid.uuid4().hex[:8]}"
    reply = await client.post("/users", data={"csrf_token": token, "username": new_name,
                                              "password": PASSWORD, "role": "admin"})
    assert reply.status == 403
    with pytest.raises(staff.UserNotFound):
        staff.get_user(accounts.engine, new_name)
    reply = await client.post(f"/users/{accounts.admin}", data={"csrf_token": token, "change": "deactivate"})
    assert reply.status == 403 and staff.get_user(accounts.engine, accounts.admin).active
    reply = await client.post(f"/users/{accounts.reviewer}", data={
        "csrf_token": token, "change": "role", "role": "admin"})
    assert reply.status == 403 and staff.get_user(accounts.engine, accounts.reviewer).role == "reviewer"


async def test_posts_need_the_sessions_csrf_token(client, accounts):
    # Even the login form: without its token a login is refused (login CSRF).
    reply = await client.post("/login", data={"username": accounts.admin, "password": PASSWORD})
    assert reply.status == 403
    await login(client, accounts.admin, PASSWORD)
    token = await page_token(client)
    name = f"new-{uuid.uuid4().hex[:8]}"
    form = {"username": name, "password": PASSWORD, "role": "reviewer"}
    assert (await client.post("/users", data=form)).status == 403
    assert (await client.post("/users", data={**form, "csrf_token": "not-" + token})).status == 403
    assert (await client.post("/users", data=form, headers={"X-CSRF-Token": token[:-1]})).status == 403
    with pytest.raises(staff.UserNotFound):
        staff.get_user(accounts.engine, name)
    reply = await client.post("/users", data=form, headers={"X-CSRF-Token": token}, allow_redirects=False)
    assert reply.status == 303
    assert staff.get_user(accounts.engine, name).role == "reviewer"
    assert await page_token(client) == token  # one token for the whole session


async def test_a_token_from_another_session_is_refused(tmp_path, clinic_url, clock, accounts):
    app = console(tmp_path, clinic_url, clock)
    async with TestClient(TestServer(app)) as client:
        await login(client, accounts.admin, PASSWORD)
        first = await page_token(client)
        await client.post("/logout", data={"csrf_token": first})
        await login(client, accounts.admin, PASSWORD)
        reply = await client.post("/users/" + accounts.reviewer, data={"csrf_token": first, "change": "deactivate"})
        assert reply.status == 403 and staff.get_user(accounts.engine, accounts.reviewer).active


# ---- Headers ----


async def test_every_answer_carries_the_security_headers(client, accounts):
    answers = [
        await client.get("/login"),
        await client.get("/users", allow_redirects=False),  # a redirect
        await client.post("/logout", allow_redirects=False),  # an error
        await client.get("/static/console.css"),
        await client.get("/healthz"),
    ]
    await login(client, accounts.reviewer, PASSWORD)
    answers.append(await client.get("/users"))  # 403
    for reply in answers:
        headers = reply.headers
        assert headers["Content-Security-Policy"] == security.CONTENT_SECURITY_POLICY, reply.url
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"


# ---- Staff accounts page ----


async def test_an_admin_manages_accounts_on_the_users_page(client, accounts):
    await login(client, accounts.admin, PASSWORD)
    token = await page_token(client)
    name = f"New-{uuid.uuid4().hex[:8]}"
    reply = await client.post("/users", data={"csrf_token": token, "username": name, "password": PASSWORD,
                                              "role": "reviewer"})
    html = await reply.text()
    assert reply.status == 200 and "Account created." in html and name.lower() in html
    assert audited(accounts.engine, "create_user", name.lower())

    again = await client.post("/users", data={"csrf_token": token, "username": name, "password": PASSWORD,
                                              "role": "reviewer"})
    assert again.status == 400 and "already exists" in await again.text()
    short = await client.post("/users", data={"csrf_token": token, "username": "shorty-" + name,
                                              "password": "too short", "role": "reviewer"})
    assert short.status == 400 and "at least 12 characters" in await short.text()
    with pytest.raises(staff.UserNotFound):
        staff.get_user(accounts.engine, "shorty-" + name)

    changes = [
        ({"change": "role", "role": "admin"}, "Role changed."),
        ({"change": "deactivate"}, "Account deactivated"),
        ({"change": "activate"}, "Account activated"),
        ({"change": "password", "password": "another long password"}, "Password changed"),
    ]
    for change, message in changes:
        reply = await client.post(f"/users/{name.lower()}", data={"csrf_token": token, **change})
        assert reply.status == 200 and message in await reply.text(), change
    user = staff.get_user(accounts.engine, name)
    assert user.role == "admin" and user.active
    assert audited(accounts.engine, "set_role", name.lower())
    assert audited(accounts.engine, "reset_password", name.lower())
    short = await client.post(f"/users/{name.lower()}", data={"csrf_token": token, "change": "password",
                                                               "password": "short"})
    assert short.status == 400 and "at least 12 characters" in await short.text()
    missing = await client.post("/users/nobody-here", data={"csrf_token": token, "change": "deactivate"})
    assert missing.status == 404


async def test_the_last_active_admin_cannot_be_removed(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'alone.db'}"  # its own database: exactly one admin
    upgrade(url)
    engine = engine_for(url)
    admin = staff.create_user(engine, "only-admin", PASSWORD, "admin", None, datetime.now(timezone.utc)).username
    async with TestClient(TestServer(console(tmp_path, url, clock))) as client:
        await login(client, admin, PASSWORD)
        token = await page_token(client)
        for change in ({"change": "deactivate"}, {"change": "role", "role": "reviewer"}):
            reply = await client.post(f"/users/{admin}", data={"csrf_token": token, **change})
            assert reply.status == 400 and "at least one active admin" in await reply.text()
        user = staff.get_user(engine, admin)
        assert user.active and user.role == "admin"


async def test_an_unreachable_clinic_database_is_said_plainly(tmp_path, clock):
    nowhere = "postgresql://postgres@127.0.0.1:9/clinic"  # nothing listens on the discard port
    async with TestClient(TestServer(console(tmp_path, nowhere, clock))) as client:
        reply = await login(client, "anyone", PASSWORD)
        assert reply.status == 503 and "The clinic database is unavailable" in await reply.text()
        assert reply.headers["Content-Security-Policy"] == security.CONTENT_SECURITY_POLICY
