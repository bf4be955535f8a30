"""Shared fixtures: one trained model per run, one running assistant per run."""

import hashlib
import json
import secrets
import sqlite3
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional

import pytest
import yaml
from sqlalchemy.engine import make_url

from clinic_assistant.processes import Service, assistant, free_port, start, wait_until_healthy
from clinic_assistant.settings import PROJECT_DIR
from clinic_assistant.store.schema import upgrade
from clinic_assistant.training import ensure_trained_model
from tests.tcp_proxy import TcpProxy
from tests.twilio_fake import TwilioFake
from tests.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from clinic_assistant.message_processor import ClinicMessageProcessor

TESTS_DIR = Path(__file__).parent
# Messages per conversation session before it continues in a new one, for the running assistant.
SESSION_TURN_LIMIT = 4
# The running assistant's REST credential, and the limits its tests reach on purpose.
REST_TOKEN = secrets.token_urlsafe(24)
TEST_LIMITS = {
    "REST_MAX_MESSAGES_PER_MINUTE": "30",
    "REST_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE": "40",
    "WIDGET_MAX_MESSAGES_PER_MINUTE": "20",
    "WIDGET_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE": "120",
    "WIDGET_MAX_SESSIONS_PER_ADDRESS_PER_MINUTE": "60",
    "WIDGET_MAX_CONNECTIONS_PER_ADDRESS_PER_MINUTE": "60",
}
# The one-line notice that opens every conversation.
NOTICE = " ".join(
    yaml.safe_load((PROJECT_DIR / "domain.yml").read_text())["responses"]["utter_notice"][0]["text"].split()
)


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    """Debian's Chromium driven by Playwright; one per test module, so no browser outlives its tests."""
    from playwright.sync_api import sync_playwright

    from clinic_assistant import settings
    from tests.browser import new_browser

    executable = Path(settings.TEST_CHROMIUM)
    if not executable.exists():
        reason = f"Chromium not found at {executable}: `make browser` installs Debian's (CLINIC_TEST_CHROMIUM)"
        if settings.REQUIRE_SERVICES:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = new_browser(playwright, str(executable))
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """Trained once per run; reused as is when no training input changed."""
    return ensure_trained_model()


@pytest.fixture(scope="session")
def nlu_processor(trained_model: Path) -> "ClinicMessageProcessor":
    """The trained model loaded once in this process, as the Rasa server runs it (NLU parses cached)."""
    from rasa.core.lock_store import InMemoryLockStore
    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain

    from clinic_assistant.message_processor import ClinicMessageProcessor

    return ClinicMessageProcessor(
        model_path=trained_model,
        tracker_store=InMemoryTrackerStore(Domain.empty()),
        lock_store=InMemoryLockStore(),
        generator=None,
    )


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not met within {timeout}s")


class RestClient:
    """Talks to the assistant's REST channel the way an integration would (with its bearer token)."""

    def __init__(
        self,
        base_url: str,
        web_url: str,
        console_url: str,
        tracker_db: Path,
        work_dir: Path,
        services: Dict[str, Service],
        token: str,
    ) -> None:
        self.base_url = base_url
        self.url = f"{base_url}/webhooks/rest/webhook"
        self.token = token
        self.web_url = web_url  # the demo page with the widget; the only origin the widget channel allows
        self.console_url = console_url  # the staff console, reading this assistant's tracker and clinic database
        self.tracker_db = tracker_db
        self.work_dir = work_dir  # the servers' logs and the flag spool
        self.services = services

    def restart(self, name: str, crash: bool = False) -> None:
        """Stop a service (or kill it, as a crash would) and start it again as it was, as a deploy would."""
        old = self.services[name]
        if crash:
            old.process.kill()
            old.process.wait()
        else:
            old.stop()
        self.services[name] = start(old.name, list(old.process.args), old.health_url, old.env, old.log)
        wait_until_healthy(self.services[name])

    def restart_actions(self) -> None:
        self.restart("actions")

    def log(self, service: str) -> str:
        return (self.work_dir / f"{service}.log").read_text(errors="replace")

    @staticmethod
    def conversation(sender: str) -> str:
        """The conversation id a REST sender's messages are kept under (REST has its own namespace)."""
        return f"rest-{sender}"

    def user_events(self, sender: str) -> List[dict]:
        """What Rasa's tracker store recorded of this REST sender's user turns."""
        return self.conversation_events(self.conversation(sender), "user")

    def conversation_events(self, conversation_id: str, type_name: str) -> List[dict]:
        """The events of one type that Rasa's tracker store recorded of any channel's conversation."""
        with sqlite3.connect(self.tracker_db) as db:
            query = "SELECT data FROM events WHERE sender_id = ? AND type_name = ? ORDER BY id"
            rows = db.execute(query, (conversation_id, type_name)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def post_raw(
        self, body: bytes, content_type: str = "application/json", headers: Optional[Dict[str, str]] = None,
        address: Optional[str] = None,
    ) -> "tuple[int, bytes]":
        """POST to the REST channel with the token, from ``address`` (as a proxy in front would forward it)."""
        sent = {"Content-Type": content_type, "Authorization": f"Bearer {self.token}", **(headers or {})}
        if address:
            sent["X-Forwarded-For"] = address
        request = urllib.request.Request(self.url, data=body, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def send(self, sender: str, text: str) -> List[dict]:
        # Each conversation from its own address, as visitors' integrations would be: only the tests of the
        # per-address limit share one.
        body = json.dumps({"sender": sender, "message": text}).encode()
        status, reply = self.post_raw(body, address=address_of(sender))
        assert status == 200, reply
        return json.loads(reply)

    def replies(self, sender: str, text: str) -> List[dict]:
        """The assistant's reply messages, without the notice that opens every conversation."""
        return [m for m in self.send(sender, text) if m.get("text") != NOTICE]

    def say(self, sender: str, text: str) -> str:
        """The assistant's reply texts to one message, joined; without the notice
        that opens every conversation (tests of the notice use ``send``)."""
        return "\n".join(m.get("text", "") for m in self.replies(sender, text))


def address_of(name: str) -> str:
    """A client address of the documentation range (RFC 5737) for ``name``, the same for the same name."""
    digest = hashlib.sha256(name.encode()).digest()
    return f"198.51.{digest[0]}.{digest[1] or 1}"


@dataclass
class ClinicDatabase:
    """The clinic database the running assistant writes to, as the tests reach it."""

    url: str  # what the tests read with
    assistant_url: str  # what the action server is given
    proxy: Optional[TcpProxy] = None  # set when the tests can take the database away


@pytest.fixture(scope="session")
def clinic_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClinicDatabase]:
    """PostgreSQL behind a loopback proxy the tests can cut; SQLite when PostgreSQL is
    unreachable and not required (the tests that cut it then skip). Migrated first, as
    the run command does."""
    # Its own database: the assistant's delivery worker must not touch the store tests' rows.
    with ExitStack() as stack:
        try:
            url = stack.enter_context(temporary_postgres_database())
        except pytest.skip.Exception:
            url = f"sqlite:///{tmp_path_factory.mktemp('clinic') / 'clinic.db'}"
            upgrade(url)
            yield ClinicDatabase(url, url)
            return
        upgrade(url)
        parsed = make_url(url)
        proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432), free_port())
        proxy.restore()
        stack.callback(proxy.cut)
        yield ClinicDatabase(url, parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(False), proxy)


@pytest.fixture(scope="session")
def clinic_webhook() -> Iterator[WebhookReceiver]:
    """The clinic's scheduling webhook, played on loopback; it fails each request's first try on purpose."""
    with WebhookReceiver(secrets.token_hex(16), fail_first=1) as receiver:
        yield receiver


@dataclass(frozen=True)
class SmsAccount:
    """The clinic's Twilio account as the running assistant is configured with it."""

    account_sid: str
    auth_token: str
    number: str  # the clinic's texting number
    public_url: str  # the webhook URL as Twilio's console has it (a proxy in front, so not Rasa's own)
    max_segments: int
    conversation_secret: str


@pytest.fixture(scope="session")
def sms_account() -> SmsAccount:
    return SmsAccount(
        account_sid="AC" + secrets.token_hex(16),
        auth_token=secrets.token_hex(16),
        number="+18505550100",
        public_url="https://clinic.example/sms/webhook",
        max_segments=2,
        conversation_secret=secrets.token_hex(16),
    )


@pytest.fixture(scope="session")
def twilio_api(sms_account: SmsAccount) -> Iterator[TwilioFake]:
    """Twilio's Messages API, played on loopback; it records every text the assistant sends."""
    with TwilioFake(sms_account.account_sid, sms_account.auth_token) as twilio:
        yield twilio


@pytest.fixture(scope="session")
def running_assistant(
    trained_model: Path,
    clinic_database: ClinicDatabase,
    clinic_webhook: WebhookReceiver,
    twilio_api: TwilioFake,
    sms_account: SmsAccount,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RestClient]:
    """The real Rasa server, action server, web app and delivery worker on free ports, with their own stores,
    the clinic's webhook and Twilio's API."""
    work = tmp_path_factory.mktemp("assistant")
    rasa_port, actions_port, web_port, console_port = free_port(), free_port(), free_port(), free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    env = {
        "TRACKER_URL": f"sqlite:///{work / 'tracker.db'}",
        "CLINIC_DATABASE_URL": clinic_database.assistant_url,
        "CLINIC_RECORD_SPOOL": str(work / "unstored-records.jsonl"),
        "CLINIC_WEBHOOK_URL": clinic_webhook.url,
        "CLINIC_WEBHOOK_SECRET": clinic_webhook.secret,
        "DELIVERY_POLL_SECONDS": "0.2",
        "DELIVERY_BACKOFF_BASE": "0.5",
        "DELIVERY_BACKOFF_MAX": "1",
        "WIDGET_SESSION_SECRET": secrets.token_hex(32),
        "WIDGET_ALLOWED_ORIGINS": web_url,
        "WIDGET_SERVER_URL": f"http://127.0.0.1:{rasa_port}",
        "TWILIO_ACCOUNT_SID": sms_account.account_sid,
        "TWILIO_AUTH_TOKEN": sms_account.auth_token,
        "TWILIO_FROM_NUMBER": sms_account.number,
        "TWILIO_API_BASE_URL": twilio_api.base_url,
        "SMS_WEBHOOK_PUBLIC_URL": sms_account.public_url,
        # Two segments, so that an ordinary first answer (notice included) has to be split.
        "SMS_MAX_SEGMENTS": str(sms_account.max_segments),
        "SMS_CONVERSATION_SECRET": sms_account.conversation_secret,
        # A text left by a server that died is taken up again within seconds, not minutes.
        "SMS_RETRY_SECONDS": "1",
        "SMS_CLAIM_LEASE_SECONDS": "5",
    }
    env["CONSOLE_INDEX_SECONDS"] = "0.5"
    # Behind one proxy, as in production: the tests give each conversation its own client address
    # (X-Forwarded-For), and the limit tests share one on purpose.
    env.update(REST_API_TOKEN=REST_TOKEN, SANIC_PROXIES_COUNT="1", **TEST_LIMITS)
    # A session continues in a new one after this many messages (20 by default), so that every longer
    # end-to-end conversation also crosses a continuation.
    env["SESSION_TURN_LIMIT"] = str(SESSION_TURN_LIMIT)
    with assistant(
        trained_model, rasa_port, actions_port, web_port, console_port, extra_env=env, log_dir=work
    ) as services:
        yield RestClient(
            f"http://127.0.0.1:{rasa_port}", web_url, f"http://127.0.0.1:{console_port}",
            work / "tracker.db", work, services, REST_TOKEN,
        )


@contextmanager
def temporary_postgres_database(template: Optional[str] = None) -> Iterator[str]:
    """A fresh PostgreSQL database (a copy of the database ``template``, if given), dropped afterwards.

    Skips when PostgreSQL is unreachable, unless CLINIC_REQUIRE_SERVICES is set (CI): then it fails.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from clinic_assistant import settings

    server = make_url(settings.TEST_POSTGRES_URL)
    admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}, future=True)
    name = f"clinic_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            copy = f' TEMPLATE "{template}"' if template else ""
            connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    except OperationalError as error:
        admin.dispose()
        detail = " ".join(str(error.orig).split())
        reason = f"PostgreSQL not reachable at {server!r}: set CLINIC_TEST_POSTGRES_URL ({detail})"
        if settings.REQUIRE_SERVICES:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_postgres_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated once per run, which each test gets a copy of."""
    from clinic_assistant.store.db import engine_for
    from clinic_assistant.store.schema import upgrade

    with temporary_postgres_database() as url:
        upgrade(url)
        engine_for(url).dispose()  # PostgreSQL copies only a database nobody is connected to
        yield make_url(url).database


@pytest.fixture
def postgres_url(migrated_postgres_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of this test only: tests that share one slow down as it fills, and
    the audit log can't be emptied between them (it is append-only)."""
    with temporary_postgres_database(template=migrated_postgres_template) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def clinic_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clinic database URL per backend: a new SQLite file per test, the run's PostgreSQL database.

    PostgreSQL is requested only by its own param, so SQLite tests run without it.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clinic.db'}"
    return request.getfixturevalue("postgres_url")
