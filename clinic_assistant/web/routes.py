"""URL map of the web app."""

from pathlib import Path

from aiohttp import web

from clinic_assistant.web import views

STATIC_DIR = Path(__file__).parent / "static"


def setup_routes(app: web.Application, widget_dir: Path) -> None:
    app.router.add_get("/", views.demo_page, name="demo")
    app.router.add_get("/healthz", views.health, name="health")
    app.router.add_get("/readyz", views.ready, name="ready")
    app.router.add_static("/static/", STATIC_DIR, name="static")
    if widget_dir.is_dir():
        app.router.add_static("/widget/", widget_dir, name="widget")
    else:
        # Built by npm (make setup); until then the page still loads and says why the chat is missing.
        app.router.add_get("/widget/{name}", views.widget_not_built, name="widget")
