"""Logging in and out, the health and readiness checks, and the admins' page of staff accounts.

Failed logins and lockouts are audited with the account's username, and only when the account exists:
what someone typed as an unknown username may be a password typed in the wrong box.
"""

import asyncio
import math
from datetime import datetime, timezone
from functools import partial
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from clinic_assistant import readiness, settings
from clinic_assistant.console import keys
from clinic_assistant.console.security import (
    csrf_token,
    current_user,
    end_session,
    logged_in_user,
    require_role,
    start_session,
)
from clinic_assistant.store import staff
from clinic_assistant.store.review import audit

WRONG_LOGIN = "Wrong username or password."
LOCKED = "This account is locked for {minutes} minutes after too many failed logins."
# What a POST on the users page did, named in its redirect (?done=...); unknown names show nothing.
DONE = {
    "created": "Account created.",
    "role": "Role changed.",
    "activated": "Account activated (and unlocked).",
    "deactivated": "Account deactivated: its sessions have ended.",
    "password": "Password changed: the account's sessions have ended.",
}


def _now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.app[keys.CLOCK](), timezone.utc)


async def _audit(request: web.Request, actor: str, action: str, target: str, detail: str = "") -> None:
    await asyncio.to_thread(audit, request.app[keys.CLINIC], actor, action, target, detail)


def _safe_next(value: object) -> str:
    """Where to go after logging in: a path of this site only (never another site), else the queue."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.isprintable() or parts.path in ("/login", "/logout"):
        return "/"
    return value


# ---- Login and logout ----


async def login_page(request: web.Request) -> web.Response:
    target = _safe_next(request.query.get("next"))
    if logged_in_user(request):
        raise web.HTTPSeeOther(target)
    notice = None
    if request.query.get("expired"):
        minutes = request.app[keys.SETTINGS].idle_minutes
        notice = f"Your session ended after {minutes:g} minutes without activity. Please log in again."
    elif request.query.get("out"):
        notice = "You have logged out."
    return _login_form(request, target, notice=notice)


def _login_form(
    request: web.Request, target: str, username: str = "", notice: Optional[str] = None,
    error: Optional[str] = None, status: int = 200,
) -> web.Response:
    context = {
        "next": target if target != "/" else "",
        "username": username,
        "notice": notice,
        "error": error,
        "csrf_token": csrf_token(request),
    }
    return aiohttp_jinja2.render_template("login.html", request, context, status=status)


async def login(request: web.Request) -> web.Response:
    """Log in (the session starts anew), or say why not without telling whether the username exists."""
    client = request.remote or ""
    form = await request.post()
    target = _safe_next(form.get("next"))
    username = str(form.get("username", "")).strip()
    limiter = request.app[keys.LOGIN_LIMITER]
    if not limiter.allow(client):
        minutes = math.ceil(limiter.retry_after(client) / 60)
        error = f"Too many login attempts from your network. Try again in {minutes} minutes."
        response = _login_form(request, target, username, error=error, status=429)
        response.headers["Retry-After"] = str(limiter.retry_after(client))
        return response
    engine, now = request.app[keys.CLINIC], _now(request)
    try:
        user = await asyncio.to_thread(staff.authenticate, engine, username, str(form.get("password", "")), now)
    except staff.AccountLocked as locked:
        await _audit(request, "system", "login_refused_locked", staff.normalise_username(username), f"from {client}")
        minutes = math.ceil((locked.until - now).total_seconds() / 60)
        return _login_form(request, target, username, error=LOCKED.format(minutes=minutes), status=403)
    except staff.LoginFailed as failed:
        return await _login_failed(request, target, username, failed)
    found = await asyncio.to_thread(staff.session_user, engine, user.id)
    if found is None:  # deleted in between
        return _login_form(request, target, username, error=WRONG_LOGIN, status=401)
    start_session(request, user, found[1])
    await _audit(request, user.username, "login", user.username, f"from {client}")
    raise web.HTTPSeeOther(target)


async def _login_failed(request: web.Request, target: str, username: str, failed: staff.LoginFailed) -> web.Response:
    client = request.remote or ""
    name = staff.normalise_username(username) if failed.known else ""
    detail = f"from {client}" if failed.known else f"unknown or inactive user, from {client}"
    await _audit(request, "system", "login_failed", name, detail)
    if not failed.locked_now:
        return _login_form(request, target, username, error=WRONG_LOGIN, status=401)
    minutes = settings.CONSOLE_LOCKOUT_MINUTES
    await _audit(request, "system", "account_locked", name, f"{minutes} minutes, after too many failed logins")
    return _login_form(request, target, username, error=LOCKED.format(minutes=minutes), status=403)


async def logout(request: web.Request) -> web.Response:
    user = current_user(request)
    end_session(request)
    await _audit(request, user.username, "logout", user.username)
    raise web.HTTPSeeOther("/login?out=1")


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """200 when the clinic database and the tracker database both answer, else 503 naming those that do not."""
    failed = await readiness.failures({
        "clinic database": partial(readiness.query, request.app[keys.CLINIC]),
        "tracker database": partial(readiness.query, request.app[keys.TRACKER]),
    })
    body, status = readiness.report(failed)
    return web.json_response(body, status=status)


# ---- Staff accounts (admins) ----


async def _users_page(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    users = await asyncio.to_thread(staff.list_users, request.app[keys.CLINIC])
    now = _now(request)
    values: Dict[str, Any] = {
        "users": users,
        "locked": {user.username for user in users if user.locked_until and user.locked_until > now},
        "roles": staff.ROLES,
        "min_length": staff.PASSWORD_MIN_LENGTH,
        "done": DONE.get(request.query.get("done", "")),
        "form": {"username": "", "role": "reviewer"},
        "error": None,
    }
    values.update(context)
    return aiohttp_jinja2.render_template("users.html", request, values, status=status)


@require_role("admin")
async def users_page(request: web.Request) -> web.Response:
    return await _users_page(request)


@require_role("admin")
async def create_user(request: web.Request) -> web.Response:
    admin = current_user(request)
    form = await request.post()
    username, role = str(form.get("username", "")), str(form.get("role", ""))
    try:
        user = await asyncio.to_thread(
            staff.create_user, request.app[keys.CLINIC], username, str(form.get("password", "")), role,
            admin.username, _now(request),
        )
    except ValueError as error:  # UserExists included
        context = {"error": str(error), "form": {"username": username, "role": role}}
        return await _users_page(request, 400, **context)
    await _audit(request, admin.username, "create_user", user.username, f"role {user.role}")
    raise web.HTTPSeeOther("/users?done=created")


@require_role("admin")
async def change_user(request: web.Request) -> web.Response:
    """One change to an account: its role, active or not, or a new password."""
    admin = current_user(request)
    form = await request.post()
    engine = request.app[keys.CLINIC]
    change = form.get("change")
    try:
        user = await asyncio.to_thread(staff.get_user, engine, request.match_info["username"])
        if change == "role":
            role = str(form.get("role", ""))
            await _keep_an_admin(engine, user, role == "admin")
            await asyncio.to_thread(staff.set_role, engine, user.username, role)
            await _audit(request, admin.username, "set_role", user.username, role)
            done = "role"
        elif change in ("activate", "deactivate"):
            active = change == "activate"
            await _keep_an_admin(engine, user, active)
            await asyncio.to_thread(staff.set_active, engine, user.username, active)
            await _audit(request, admin.username, f"{change}_user", user.username)
            done = "activated" if active else "deactivated"
        elif change == "password":
            await asyncio.to_thread(staff.set_password, engine, user.username, str(form.get("password", "")))
            await _audit(request, admin.username, "reset_password", user.username)
            done = "password"
        else:
            raise web.HTTPBadRequest(text="Unknown change.")
    except staff.UserNotFound:
        raise web.HTTPNotFound(text="No such staff account.") from None
    except ValueError as error:
        return await _users_page(request, 400, error=str(error))
    raise web.HTTPSeeOther(f"/users?done={done}")


async def _keep_an_admin(engine: Any, user: staff.StaffUser, stays_admin: bool) -> None:
    """ValueError if the change would leave the console without any active admin."""
    if user.role == "admin" and user.active and not stays_admin:
        if await asyncio.to_thread(staff.active_admins, engine) <= 1:
            raise ValueError("The console needs at least one active admin: make another admin first.")
