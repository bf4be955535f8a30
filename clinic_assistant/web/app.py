"""The web app factory: serves the demo clinic page and the widget's script and stylesheet."""

from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web

from clinic_assistant import logs, settings
from clinic_assistant.clinic_profile import load_profile
from clinic_assistant.web import keys
from clinic_assistant.web.routes import setup_routes

TEMPLATES_DIR = Path(__file__).parent / "templates"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def content_security_policy(assistant_url: str) -> str:
    """Only this app's own files; connections only to the assistant (socket.io over HTTP or websocket)."""
    origin = urlsplit(assistant_url)
    socket_origin = f"{'wss' if origin.scheme == 'https' else 'ws'}://{origin.netloc}"
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src 'self' {origin.scheme}://{origin.netloc} {socket_origin}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ])


def security_headers(policy: str) -> Callable:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith("/widget/"):
            # The clinic embeds the widget on its own pages, on another origin.
            response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return response

    return middleware


def create_app(
    widget_dir: Path = settings.WIDGET_DIST_DIR, assistant_url: str = settings.WIDGET_SERVER_URL
) -> web.Application:
    app = web.Application(middlewares=[security_headers(content_security_policy(assistant_url))])
    app[keys.ASSISTANT_URL] = assistant_url
    app[keys.CLINIC] = load_profile()
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    setup_routes(app, widget_dir)
    return app


def main() -> None:
    """Serve the web app on WEB_HOST:WEB_PORT until stopped."""
    logs.configure("web")
    web.run_app(create_app(), host=settings.WEB_HOST, port=settings.WEB_PORT, print=None, access_log=None)
