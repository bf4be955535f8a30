"""URL map of the console. Every route needs a login except the public ones (see ``security.PUBLIC_RESOURCES``)."""

from pathlib import Path

from aiohttp import web

from clinic_assistant.console import auth_views, views

STATIC_DIR = Path(__file__).parent / "static"


def setup_routes(app: web.Application) -> None:
    router = app.router
    # ---- AUTH: login, logout, health, readiness, staff accounts ----
    login = router.add_resource("/login", name="login")
    login.add_route("GET", auth_views.login_page)
    login.add_route("POST", auth_views.login)
    router.add_post("/logout", auth_views.logout, name="logout")
    router.add_get("/healthz", auth_views.health, name="health")
    router.add_get("/readyz", auth_views.ready, name="ready")
    users = router.add_resource("/users", name="users")
    users.add_route("GET", auth_views.users_page)
    users.add_route("POST", auth_views.create_user)
    router.add_post("/users/{username}", auth_views.change_user, name="user")
    router.add_static("/static/", STATIC_DIR, name="static")
    # ---- VIEWS: the queue, transcripts, requests, teaching, dashboard, audit (views/__init__.py) ----
    views.register(router)
