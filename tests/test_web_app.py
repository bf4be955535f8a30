"""The web app's routes with aiohttp's test client: the demo page, the widget's files, headers."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from clinic_assistant.web.app import create_app

ASSISTANT = "https://assistant.clinic.example"


@pytest.fixture
async def client(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CLINIC_NAME", 'the <script>alert("x")</script> Center')
    (tmp_path / "clinic-widget.js").write_text("/* widget */")
    async with TestClient(TestServer(create_app(widget_dir=tmp_path, assistant_url=ASSISTANT))) as client:
        yield client


async def test_the_demo_page_embeds_the_widget_pointed_at_the_assistant(client):
    reply = await client.get("/")
    html = await reply.text()
    assert reply.status == 200 and reply.content_type == "text/html"
    assert f'<script src="/widget/clinic-widget.js" data-server="{ASSISTANT}"' in html
    # The clinic's name comes from its profile and is escaped like any other text.
    assert "<script>alert" not in html and "&lt;script&gt;" in html


async def test_pages_carry_a_strict_content_security_policy(client):
    reply = await client.get("/")
    policy = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    # The widget may talk to the assistant over HTTP(S) and websockets, and to nothing else.
    assert f"connect-src 'self' {ASSISTANT} wss://assistant.clinic.example" in policy
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_widget_files_can_be_embedded_by_other_origins(client):
    reply = await client.get("/widget/clinic-widget.js")
    assert reply.status == 200 and await reply.text() == "/* widget */"
    assert reply.headers["Cross-Origin-Resource-Policy"] == "cross-origin"


async def test_missing_files_and_paths_outside_the_widget_are_404(client):
    for path in ("/widget/nothing.js", "/widget/../app.py", "/widget/%2e%2e/app.py", "/nowhere"):
        assert (await client.get(path)).status in (403, 404), path


async def test_health(client):
    reply = await client.get("/healthz")
    assert reply.status == 200 and await reply.json() == {"status": "ok"}


async def test_an_unbuilt_widget_is_a_clear_404_and_the_page_still_loads(tmp_path):
    app = create_app(widget_dir=tmp_path / "not-built", assistant_url=ASSISTANT)
    async with TestClient(TestServer(app)) as client:
        reply = await client.get("/widget/clinic-widget.js")
        assert reply.status == 404 and "make setup" in await reply.text()
        assert (await client.get("/")).status == 200
