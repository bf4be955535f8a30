"""Readiness checks: the web app's and the staff console's ``/readyz`` (aiohttp's test client), and the Rasa
server's ``/webhooks/readiness/`` route with Rasa's own stores (the running server is checked in test_e2e_rest.py)."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rasa.core.lock_store import InMemoryLockStore, RedisLockStore
from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore

from clinic_assistant.channels.readiness import ready
from clinic_assistant.console.app import create_app as create_console
from clinic_assistant.processes import free_port
from clinic_assistant.web.app import create_app as create_web


def unreachable_postgres() -> str:
    """A PostgreSQL URL with a password, on a loopback port nothing listens on."""
    return f"postgresql://clinic:s3cret-pw@127.0.0.1:{free_port()}/clinic"


async def test_the_web_app_is_ready_once_it_serves(tmp_path):
    async with TestClient(TestServer(create_web(widget_dir=tmp_path))) as client:
        reply = await client.get("/readyz")
        assert reply.status == 200 and await reply.json() == {"status": "ready"}


def console(tmp_path: Path, tracker_url: str, clinic_url: str) -> TestClient:
    app = create_console(tracker_url=tracker_url, clinic_url=clinic_url, session_key=bytes(32), index_seconds=0)
    return TestClient(TestServer(app))


async def test_the_console_is_ready_when_both_databases_answer(tmp_path):
    tracker_url, clinic_url = f"sqlite:///{tmp_path / 'tracker.db'}", f"sqlite:///{tmp_path / 'clinic.db'}"
    async with console(tmp_path, tracker_url, clinic_url) as client:
        reply = await client.get("/readyz")  # public: probes do not log in
        assert reply.status == 200 and await reply.json() == {"status": "ready"}
        assert "Set-Cookie" not in reply.headers


@pytest.mark.parametrize("broken", ["clinic", "tracker"])
async def test_the_console_is_not_ready_when_a_database_cannot_connect(tmp_path, broken):
    urls = {"clinic": f"sqlite:///{tmp_path / 'clinic.db'}", "tracker": f"sqlite:///{tmp_path / 'tracker.db'}"}
    urls[broken] = unreachable_postgres()
    async with console(tmp_path, urls["tracker"], urls["clinic"]) as client:
        reply = await client.get("/readyz")
        body = await reply.text()
    assert reply.status == 503
    assert json.loads(body) == {"status": "not ready", "unavailable": {f"{broken} database": "OperationalError"}}
    assert "s3cret" not in body and "127.0.0.1" not in body  # no URL, no password


def agent(tmp_path: Path, ready: bool = True, lock_store: object = None) -> SimpleNamespace:
    """Rasa's agent as the route sees it: Rasa's own stores, the tracker store wrapped as Rasa wraps it."""
    tracker_store = FailSafeTrackerStore(SQLTrackerStore(dialect="sqlite", db=str(tmp_path / "tracker.db")))
    return SimpleNamespace(
        is_ready=lambda: ready, tracker_store=tracker_store, lock_store=lock_store or InMemoryLockStore()
    )


async def readiness_of(agent: object) -> "tuple[int, dict]":
    reply = await ready(SimpleNamespace(app=SimpleNamespace(ctx=SimpleNamespace(agent=agent))))
    return reply.status, json.loads(reply.body)


async def test_the_rasa_server_is_ready_with_its_model_and_stores(tmp_path):
    assert await readiness_of(agent(tmp_path)) == (200, {"status": "ready"})


async def test_the_rasa_server_is_not_ready_without_a_model(tmp_path):
    expected = (503, {"status": "not ready", "unavailable": {"model": "not loaded"}})
    assert await readiness_of(None) == expected
    assert await readiness_of(agent(tmp_path, ready=False)) == expected


async def test_the_rasa_server_is_not_ready_when_the_lock_store_does_not_answer(tmp_path):
    redis = RedisLockStore(host="127.0.0.1", port=free_port(), socket_timeout=1)
    status, body = await readiness_of(agent(tmp_path, lock_store=redis))
    assert status == 503 and body["unavailable"] == {"lock store": "ConnectionError"}


async def test_the_rasa_server_is_not_ready_when_the_tracker_store_does_not_answer(tmp_path):
    broken = agent(tmp_path)
    (tmp_path / "tracker.db").unlink()
    (tmp_path / "tracker.db").mkdir()  # the file is now a directory: SQLite cannot open it
    broken.tracker_store._tracker_store.engine.dispose()
    status, body = await readiness_of(broken)
    assert status == 503 and body["unavailable"] == {"tracker store": "OperationalError"}
