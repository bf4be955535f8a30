"""What the console's pages share: store calls off the event loop, who is acting, times, links, messages."""

import asyncio
import re
from datetime import datetime
from typing import Any, Callable, Dict, Optional, TypeVar
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.engine import Engine

from clinic_assistant.console import keys
from clinic_assistant.console.security import current_user
from clinic_assistant.store.review import audit

T = TypeVar("T")
MAX_ID = 2**31 - 1  # ids are INTEGER columns: a larger number would be a database error, not "not found"

# What a POST did, named in its redirect (?done=tagged) and shown as text. Unknown names show nothing, so a link
# cannot make the console say something it did not do.
DONE = {
    "tagged": "Tag added.",
    "untagged": "Tag removed.",
    "noted": "Note added.",
    "reviewed": "Conversation marked reviewed.",
    "corrected": "Correction saved for teaching.",
    "status": "Request status changed.",
}


async def call(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` (a blocking store query) in a worker thread, so one slow query doesn't stall every page.
    (StoreUnavailable becomes a 503 in security.authentication.)"""
    return await asyncio.to_thread(function, *args)


def record_id(value: Optional[str]) -> Optional[int]:
    """A row id from a URL (digits, within a database integer's range), else None."""
    if value is None or not re.fullmatch(r"[0-9]{1,10}", value) or int(value) > MAX_ID:
        return None
    return int(value)


def clinic(request: web.Request) -> Engine:
    return request.app[keys.CLINIC]


def tracker(request: web.Request) -> Engine:
    return request.app[keys.TRACKER]


def actor(request: web.Request) -> str:
    """The signed-in staff member's username, as audit entries and notes name them."""
    return current_user(request).username


async def audited(request: web.Request, action: str, target: str, detail: str = "") -> None:
    """Record ``action`` by the signed-in user in the audit log (``detail`` never holds contact data)."""
    await call(audit, clinic(request), actor(request), action, target, detail)


def when(moment: Optional[datetime]) -> str:
    """A stored time as staff read it: UTC, said so, to the minute (no setting names the clinic's time zone)."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def conversation_path(conversation_id: str, *rest: str) -> str:
    """The path of a conversation's page (or of ``rest`` below it), every part quoted whole.

    A sender id may hold "/", "?" or "#"; quoted with safe="" it stays one path segment, which the router unquotes.
    """
    return "/".join(["/conversations", quote(conversation_id, safe=""), *(quote(part, safe="") for part in rest)])


def see_other(path: str, done: str, fragment: str = "") -> web.HTTPSeeOther:
    """The redirect ending a POST (POST/redirect/GET), naming what was done for the page to say."""
    location = f"{path}?{urlencode({'done': done})}"
    return web.HTTPSeeOther(location + (f"#{fragment}" if fragment else ""))


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message)


def csv_download(text: str, filename: str) -> web.Response:
    """CSV ``text`` as a file to save, not a page to show (review's CSV functions defuse formula-looking cells)."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers=headers)


def page(request: web.Request, template: str, context: Dict[str, Any], status: int = 200) -> web.Response:
    """``template`` rendered with ``context``, the POST outcome message, and the helpers every page uses."""
    helpers = {"when": when, "conversation_path": conversation_path, "done": DONE.get(request.query.get("done", ""))}
    return aiohttp_jinja2.render_template(template, request, {**helpers, **context}, status=status)
