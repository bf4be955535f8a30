"""Delivery of consultation requests to the clinic's webhook: signing, retries, outages, the worker process.

The clinic is played by a real aiohttp server on 127.0.0.1 (``webhook_receiver``); the store is a real
SQLite file. Retries are made due by moving ``now`` forward, or by a tiny backoff, never by long sleeps.
"""

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from clinic_assistant.delivery.signing import sign, signed_headers, verify
from clinic_assistant.delivery.worker import Backoff, deliver_due, run_worker
from clinic_assistant.processes import Service, assistant, free_port, process_environment, wait_until_healthy
from clinic_assistant.settings import PROJECT_DIR
from clinic_assistant.store.consultations import ConsultationRequest, get_request, submit_consultation
from clinic_assistant.store.db import engine_for
from clinic_assistant.store.schema import upgrade
from tests.webhook_receiver import WebhookReceiver, wait_until

SECRET = "test-secret-" + uuid.uuid4().hex
NAME, PHONE, EMAIL = "Dana Ruíz-Okafor", "+14155552671", "dana.r@example.org"
CONTACT_DATA = (NAME, PHONE, PHONE.lstrip("+"), EMAIL, json.dumps(NAME)[1:-1])
# Backoff short enough for a test to wait it out.
QUICK = Backoff(base=2, maximum=0.05)


@pytest.fixture
def database_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(database_url):
    return engine_for(database_url)


def submit(engine, now=None) -> str:
    request = ConsultationRequest(
        conversation_id=f"visitor-{uuid.uuid4().hex}",
        channel="rest",
        name=NAME,
        phone=PHONE,
        email=EMAIL,
        help_with="Burning pain in my left hand since a wrist fracture",
        best_times="Weekday mornings",
        consent_to_contact=True,
        consent_at=datetime.now(timezone.utc),
    )
    return submit_consultation(engine, request, now or datetime.now(timezone.utc))


def assert_no_contact_data(text: str) -> None:
    for value in CONTACT_DATA:
        assert value.lower() not in text.lower()


# --- signing -------------------------------------------------------------------------------------------------


def test_signature_round_trips_with_or_without_header_prefix():
    body, stamp = b'{"reference": "CR-7K3P"}', 1_714_555_815
    signature = sign(body, SECRET, stamp)
    assert len(signature) == 64 and int(signature, 16) >= 0
    assert verify(body, SECRET, stamp, signature, now=stamp + 1)
    assert verify(body, SECRET, stamp, "sha256=" + signature, now=stamp + 1)


def test_tampered_body_timestamp_secret_or_signature_is_refused():
    body, stamp = b'{"reference": "CR-7K3P"}', 1_714_555_815
    signature = sign(body, SECRET, stamp)
    assert not verify(b'{"reference": "CR-7K3Q"}', SECRET, stamp, signature, now=stamp)
    assert not verify(body, SECRET, stamp + 1, signature, now=stamp)
    assert not verify(body, "another-secret", stamp, signature, now=stamp)
    assert not verify(body, SECRET, stamp, signature[:-1] + ("0" if signature[-1] != "0" else "1"), now=stamp)
    assert not verify(body, SECRET, stamp, "sha256=ünïcode", now=stamp)


def test_stale_or_future_timestamps_are_refused():
    body, stamp = b"{}", 1_714_555_815
    signature = sign(body, SECRET, stamp)
    assert verify(body, SECRET, stamp, signature, now=stamp + 300)
    assert not verify(body, SECRET, stamp, signature, now=stamp + 301)
    assert not verify(body, SECRET, stamp, signature, now=stamp - 301)
    assert verify(body, SECRET, stamp, signature, now=stamp + 1000, tolerance=1000)


def test_signed_headers_carry_what_the_clinic_checks():
    body = b'{"reference": "CR-7K3P"}'
    headers = signed_headers(body, SECRET, 1_714_555_815, "CR-7K3P")
    assert headers == {
        "Content-Type": "application/json",
        "X-Clinic-Timestamp": "1714555815",
        "X-Clinic-Signature": "sha256=" + sign(body, SECRET, 1_714_555_815),
        "Idempotency-Key": "CR-7K3P",
    }


def test_backoff_grows_then_stays_at_its_maximum():
    backoff = Backoff(base=2, maximum=300)
    assert timedelta(seconds=2) <= backoff.delay(1) <= timedelta(seconds=2.2)
    assert timedelta(seconds=16) <= backoff.delay(4) <= timedelta(seconds=17.6)
    assert timedelta(seconds=300) <= backoff.delay(9) <= timedelta(seconds=330)
    # Retries never stop: an attempt count past what a float power holds still waits the maximum.
    assert timedelta(seconds=300) <= backoff.delay(5000) <= timedelta(seconds=330)


# --- delivery against the receiver ---------------------------------------------------------------------------


async def test_two_failures_then_success_delivers_each_request_exactly_once(engine, caplog):
    caplog.set_level(logging.DEBUG)
    t0 = datetime.now(timezone.utc)
    references = [submit(engine, t0), submit(engine, t0)]
    with WebhookReceiver(SECRET, fail_first=2, echo_failures=True) as receiver:
        async with aiohttp.ClientSession() as session:
            for attempt in (1, 2):
                now = t0 + timedelta(hours=attempt - 1)
                assert await deliver_due(engine, receiver.url, SECRET, session, now) == 0
                for reference in references:
                    stored = get_request(engine, reference)
                    assert (stored.status, stored.delivery_status, stored.attempts) == ("new", "failed", attempt)
                    # The receiver echoed the payload in its 500: the status stays, the contact data does not.
                    assert stored.last_error.startswith("HTTP 500: ") and "[contact]" in stored.last_error
                    assert len(stored.last_error) <= len("HTTP 500: ") + 200
                    assert_no_contact_data(stored.last_error)
                    assert stored.next_attempt_at > now
                # Nothing is due before the backoff has passed.
                assert await deliver_due(engine, receiver.url, SECRET, session, now) == 0
                assert dict(receiver.requests) == {reference: attempt for reference in references}

            assert await deliver_due(engine, receiver.url, SECRET, session, t0 + timedelta(hours=2)) == 2
            assert await deliver_due(engine, receiver.url, SECRET, session, t0 + timedelta(days=30)) == 0

    assert sorted(receiver.accepted) == sorted(references)
    assert dict(receiver.requests) == {reference: 3 for reference in references}
    assert not receiver.repeats and not receiver.refused
    for reference in references:
        stored = get_request(engine, reference)
        # Every try counts: two failures, then the one that succeeded.
        assert (stored.status, stored.delivery_status, stored.attempts) == ("delivered", "delivered", 3)
        assert stored.delivered_at == t0 + timedelta(hours=2)
        payload = receiver.payloads()[reference]
        assert (payload["reference"], payload["name"], payload["phone"]) == (reference, NAME, PHONE)
    assert "Delivered " + references[0] in caplog.text
    assert_no_contact_data(caplog.text)


async def test_receiver_down_for_a_while_then_up_gets_the_request_once(database_url, engine):
    reference = submit(engine)
    receiver = WebhookReceiver(SECRET)  # its port is free: nothing answers yet
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(database_url, receiver.url, SECRET, 0.02, stop, QUICK))
    try:
        failing = await poll(lambda: get_request(engine, reference).attempts >= 3)
        stored = get_request(engine, reference)
        assert failing and stored.last_error == "ClientConnectorError" and stored.delivery_status == "failed"
        with receiver:
            assert await poll(lambda: get_request(engine, reference).status == "delivered")
            await asyncio.sleep(0.2)  # several more rounds: none may send it again
    finally:
        stop.set()
        await asyncio.wait_for(worker, 5)
    assert list(receiver.accepted) == [reference]
    assert receiver.requests[reference] == 1 and not receiver.repeats and not receiver.refused


async def test_a_timeout_or_refusal_is_recorded_by_its_class(engine, monkeypatch):
    monkeypatch.setattr("clinic_assistant.delivery.worker.REQUEST_TIMEOUT", 0.2)
    reference = submit(engine)
    with WebhookReceiver("not-the-secret") as receiver:
        async with aiohttp.ClientSession() as session:
            await deliver_due(engine, receiver.url, SECRET, session, datetime.now(timezone.utc))
    assert get_request(engine, reference).last_error == "HTTP 401: bad or stale signature"
    assert receiver.refused == ["bad or stale signature"]

    async def hang(_request):
        await asyncio.sleep(5)

    app = aiohttp.web.Application()
    app.router.add_post("/", hang)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            later = datetime.now(timezone.utc) + timedelta(hours=1)
            await deliver_due(engine, f"http://127.0.0.1:{port}/", SECRET, session, later)
    finally:
        await runner.cleanup()
    stored = get_request(engine, reference)
    assert (stored.last_error, stored.attempts) == ("TimeoutError", 2)


async def poll(condition, timeout: float = 10) -> bool:
    """Await until ``condition()`` holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


# --- the worker process --------------------------------------------------------------------------------------


def worker_environment(database_url: str, url: str, **extra: str) -> dict:
    env = process_environment(
        {
            "CLINIC_DATABASE_URL": database_url,
            "CLINIC_WEBHOOK_URL": url,
            "CLINIC_WEBHOOK_SECRET": SECRET,
            "DELIVERY_POLL_SECONDS": "0.05",
            "DELIVERY_BACKOFF_MAX": "0.05",
            **extra,
        }
    )
    return env


def test_worker_process_delivers_a_submitted_request(database_url, engine, tmp_path):
    log = tmp_path / "delivery.log"
    with WebhookReceiver(SECRET, fail_first=1) as receiver, log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "clinic_assistant", "deliver"],
            cwd=PROJECT_DIR, env=worker_environment(database_url, receiver.url), stdout=output, stderr=output,
        )
        try:
            wait_until_healthy(Service("delivery worker", worker, None), timeout=10)
            reference = submit(engine)
            assert wait_until(lambda: reference in receiver.accepted, timeout=20), log.read_text()
            assert wait_until(lambda: get_request(engine, reference).status == "delivered", timeout=10)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(10) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
    assert receiver.requests[reference] == 2 and not receiver.repeats and not receiver.refused
    assert receiver.payloads()[reference]["email"] == EMAIL
    text = log.read_text()
    assert f"Delivered {reference}" in text and "HTTP 500: forced failure" in text and SECRET not in text
    assert_no_contact_data(text)


@pytest.mark.parametrize(
    "url, secret, message",
    [
        ("http://127.0.0.1:9/hook", "", "CLINIC_WEBHOOK_SECRET is not"),
        ("", SECRET, "CLINIC_WEBHOOK_URL is not set"),
        ("ftp://example.org/hook", SECRET, "must be an http:// or https:// URL"),
    ],
    ids=["no-secret", "no-url", "not-http"],
)
def test_worker_refuses_to_start_without_a_usable_configuration(database_url, url, secret, message):
    env = worker_environment(database_url, url, CLINIC_WEBHOOK_SECRET=secret)
    result = subprocess.run(
        [sys.executable, "-m", "clinic_assistant", "deliver"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1 and message in result.stderr


def test_a_service_without_health_url_is_healthy_while_it_runs():
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        wait_until_healthy(Service("sleeper", running, None), timeout=5)
    finally:
        running.kill()
        running.wait()
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    with pytest.raises(RuntimeError, match="sleeper exited with code 3"):
        wait_until_healthy(Service("sleeper", exited, None), timeout=5)


def test_the_assistant_runs_the_worker_only_when_a_webhook_is_set(database_url, engine, tmp_path, monkeypatch):
    monkeypatch.setattr("clinic_assistant.settings.CLINIC_WEBHOOK_URL", None)
    env = {"CLINIC_DATABASE_URL": database_url, "CLINIC_RECORD_SPOOL": str(tmp_path / "spool.jsonl")}
    model = tmp_path / "unused-model"  # only the Rasa server, not started here, loads it
    with assistant(model, actions_port=free_port(), extra_env=env, with_rasa=False) as services:
        assert list(services) == ["actions"]
    with WebhookReceiver(SECRET) as receiver:
        env.update(CLINIC_WEBHOOK_URL=receiver.url, CLINIC_WEBHOOK_SECRET=SECRET, DELIVERY_POLL_SECONDS="0.05")
        with assistant(model, actions_port=free_port(), extra_env=env, log_dir=tmp_path, with_rasa=False) as services:
            assert services["delivery"].name == "delivery worker"
            reference = submit(engine)
            assert wait_until(lambda: reference in receiver.accepted, timeout=20), services["delivery"].log_tail()
    assert services["delivery"].process.returncode == 0  # stopped cleanly, like the servers
    assert f"Delivered {reference}" in (tmp_path / "delivery.log").read_text()
