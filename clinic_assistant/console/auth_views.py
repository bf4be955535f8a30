"""Logging in and out, the health and readiness checks, and the admins' page of staff accounts.

A failed login gets one answer, in the same time, whether the username is unknown, the account inactive or the
password wrong. Failures slow down further tries of that username from that client address only (``LoginBackoff``),
so nobody can keep a staff member out from elsewhere. Failed and throttled logins are audited with the account's
username only when the account exists: what someone typed as an unknown username may be a password typed in the
wrong box.
"""

import asyncio
import math
from datetime import datetime, timezone
from functools import partial
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from clinic_assistant import readiness
from clinic_assistant.console import keys
from clinic_assistant.console.security import (
    csrf_token,
    current_user,
    end_session,
    logged_in_user,
    require_role,
    start_session,
    wait_text,
)
from clinic_assistant.store import staff
from clinic_assistant.store.review import audit

WRONG_LOGIN = "Wrong username or password."
ADDRESS_LIMITED = "Too many login attempts from your network. Try again in {wait}."
# Said alike for every username, existing or not: the count is per typed username and address.
THROTTLED = "Too many failed logins with this username from your network. Try again in {wait}."
# What a POST on the users page did, named in its redirect (?done=...); unknown names show nothing.
DONE = {
    "created": "Account created.",
    "role": "Role changed.",
    "activated": "Account activated.",
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
    limiter, backoff = request.app[keys.LOGIN_LIMITER], request.app[keys.LOGIN_BACKOFF]
    if not limiter.allow(client):
        return _too_many(request, target, username, ADDRESS_LIMITED, limiter.retry_after(client))
    wait = backoff.wait(username, client)
    if wait:
        await _audit_attempt(request, "login_throttled", username, f"next try in {math.ceil(wait)} s, from {client}")
        return _too_many(request, target, username, THROTTLED, wait)
    engine, now = request.app[keys.CLINIC], _now(request)
    try:
        user = await asyncio.to_thread(staff.authenticate, engine, username, str(form.get("password", "")), now)
    except staff.LoginFailed as failed:
        return await _login_failed(request, target, username, failed)
    backoff.succeeded(username, client)
    found = await asyncio.to_thread(staff.session_user, engine, user.id)
    if found is None:  # deleted in between
        return _login_form(request, target, username, error=WRONG_LOGIN, status=401)
    start_session(request, user, found[1])
    await _audit(request, user.username, "login", user.username, f"from {client}")
    raise web.HTTPSeeOther(target)


def _too_many(request: web.Request, target: str, username: str, message: str, seconds: float) -> web.Response:
    response = _login_form(request, target, username, error=message.format(wait=wait_text(seconds)), status=429)
    response.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response


async def _login_failed(request: web.Request, target: str, username: str, failed: staff.LoginFailed) -> web.Response:
    client = request.remote or ""
    delay = request.app[keys.LOGIN_BACKOFF].failed(username, client)
    name = staff.normalise_username(username) if failed.known else ""
    detail = f"from {client}" if failed.known else f"unknown or inactive user, from {client}"
    if delay:
        detail += f"; this username's next try from there waits {math.ceil(delay)} s"
    await _audit(request, "system", "login_failed", name, detail)
    return _login_form(request, target, username, error=WRONG_LOGIN, status=401)


async def _audit_attempt(request: web.Request, action: str, username: str, detail: str) -> None:
    """Audit a refused attempt: by username if an active account has it (one lookup either way, the same work)."""
    known = await asyncio.to_thread(staff.active_username, request.app[keys.CLINIC], username)
    await _audit(request, "system", action, known or "", detail if known else f"unknown or inactive user, {detail}")


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
    values: Dict[str, Any] = {
        "users": users,
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
