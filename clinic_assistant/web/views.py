"""Thin views: each renders a template or answers a health or readiness check."""

from typing import Any, Dict

import aiohttp_jinja2
from aiohttp import web

from clinic_assistant.web import keys


@aiohttp_jinja2.template("demo.html")
async def demo_page(request: web.Request) -> Dict[str, Any]:
    return {"clinic": request.app[keys.CLINIC], "assistant_url": request.app[keys.ASSISTANT_URL]}


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(_: web.Request) -> web.Response:
    """Ready as soon as it serves: the app needs no other service."""
    return web.json_response({"status": "ready"})


async def widget_not_built(_: web.Request) -> web.Response:
    return web.Response(status=404, text="The chat widget is not built: run `make setup`.")
