"""Two Rasa servers sharing a PostgreSQL tracker store and a Redis lock store, as in production.

Turns of the same conversations go alternately to both servers, concurrently; the transcripts must be
complete and in order and each consultation request stored once. Then one server is killed under load
and the conversations carry on on the other without losing a turn.
"""

import json
import secrets
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Callable, Iterator, List, Optional
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from clinic_assistant import settings
from clinic_assistant.processes import assistant, free_port
from clinic_assistant.store.consultations import list_requests
from clinic_assistant.store.db import engine_for
from clinic_assistant.store.schema import upgrade
from tests.conftest import REST_TOKEN, RestClient, temporary_postgres_database

CONSULTATION = [
    "I'd like to book a consultation",
    "Maria Lopez",
    "(850) 555-0142",
    "no thanks",
    "CRPS in my left foot",
    "weekday mornings",
    "yes",
    "yes send it",
]
CONVERSATIONS = 6


def redis_url() -> str:
    """A Redis database of its own on the local server; skips (fails under CLINIC_REQUIRE_SERVICES) without one."""
    url = settings.TEST_REDIS_URL
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 6379), timeout=2).close()
    except OSError as error:
        reason = f"Redis not reachable at {url}: set CLINIC_TEST_REDIS_URL ({error})"
        if settings.REQUIRE_SERVICES:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return url


class Cluster:
    def __init__(self, ports: List[int], services: dict, tracker_url: str, clinic_url: str) -> None:
        self.urls = [f"http://127.0.0.1:{port}/webhooks/rest/webhook" for port in ports]
        self.services, self.tracker_url, self.clinic_url = services, tracker_url, clinic_url
        self.down: set = set()

    def send(self, server: int, sender: str, message: str) -> list:
        """One turn on one server; on a refused connection the next server takes it, as a load balancer would."""
        for attempt in range(len(self.urls)):
            index = (server + attempt) % len(self.urls)
            if index in self.down:
                continue
            try:
                return post(self.urls[index], sender, message)
            except (urllib.error.URLError, ConnectionError):
                self.down.add(index)
        raise AssertionError("no Rasa server answered")

    def user_texts(self, sender: str) -> List[str]:
        with create_engine(self.tracker_url).connect() as connection:
            rows = connection.execute(
                text("SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"),
                {"s": RestClient.conversation(sender)},
            ).all()
        assert_complete_turns(rows)
        return [json.loads(data)["text"] for kind, data in rows if kind == "user"]


def post(url: str, sender: str, message: str) -> list:
    body = json.dumps({"sender": sender, "message": message}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {REST_TOKEN}"}
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=120) as reply:
        assert reply.status == 200
        return json.loads(reply.read())


def assert_complete_turns(rows: list) -> None:
    """Every user message is followed by the assistant's actions up to action_listen before the next one."""
    waiting = False
    for kind, data in rows:
        if kind == "user":
            assert not waiting, "a turn started before the previous one ended (turns interleaved)"
            waiting = True
        elif kind == "action" and json.loads(data).get("name") == "action_listen":
            waiting = False
    assert not waiting, "the last turn never ended"


@pytest.fixture(scope="module")
def cluster(trained_model, tmp_path_factory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("cluster")
    with ExitStack() as stack:
        tracker_url = stack.enter_context(temporary_postgres_database())
        clinic_url = stack.enter_context(temporary_postgres_database())
        upgrade(clinic_url)
        ports = [free_port(), free_port()]
        env = {
            "TRACKER_URL": tracker_url,
            "CLINIC_DATABASE_URL": clinic_url,
            "LOCK_STORE_URL": redis_url(),
            "CLINIC_RECORD_SPOOL": str(work / "unstored-records.jsonl"),
            "WIDGET_SESSION_SECRET": secrets.token_hex(32),
            "REST_API_TOKEN": REST_TOKEN,
            # Every conversation of these tests comes from this one machine: only the per-conversation limit holds.
            "REST_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE": "0",
        }
        services = stack.enter_context(
            assistant(trained_model, ports[0], free_port(), more_rasa_ports=ports[1:], extra_env=env, log_dir=work)
        )
        yield Cluster(ports, services, tracker_url, clinic_url)


def run_conversations(cluster: Cluster, senders: List[str], during: Optional[Callable[[], object]] = None) -> None:
    """Each conversation's turns in order, turn n on server n % 2; the conversations run concurrently."""
    halfway = threading.Barrier(len(senders) + 1)

    def converse(sender: str) -> None:
        for n, message in enumerate(CONSULTATION):
            if n == len(CONSULTATION) // 2:
                halfway.wait(timeout=300)
            replies = cluster.send(n % 2, sender, message)
            assert replies, (sender, message)

    with ThreadPoolExecutor(len(senders)) as pool:
        futures = [pool.submit(converse, sender) for sender in senders]
        halfway.wait(timeout=300)
        if during:
            during()
        for future in futures:
            future.result()


def requests_of(cluster: Cluster, sender: str) -> list:
    conversation = RestClient.conversation(sender)
    return [r for r in list_requests(engine_for(cluster.clinic_url)) if r.request.conversation_id == conversation]


def test_turns_alternating_between_two_servers_stay_complete_and_in_order(cluster):
    senders = [f"scale-{secrets.token_hex(4)}" for _ in range(CONVERSATIONS)]
    run_conversations(cluster, senders)
    for sender in senders:
        assert cluster.user_texts(sender) == CONSULTATION
        assert len(requests_of(cluster, sender)) == 1


def test_simultaneous_messages_of_one_conversation_on_both_servers_take_turns(cluster):
    sender = f"scale-{secrets.token_hex(4)}"
    messages = ["what is crps", "what are the symptoms of crps", "how is crps treated", "can ketamine help crps"]
    with ThreadPoolExecutor(len(messages)) as pool:
        list(pool.map(lambda n: cluster.send(n % 2, sender, messages[n]), range(len(messages))))
    assert sorted(cluster.user_texts(sender)) == sorted(messages)  # all there, none interleaved (checked inside)


def test_a_server_killed_under_load_leaves_the_conversations_whole_on_the_other(cluster):
    senders = [f"fault-{secrets.token_hex(4)}" for _ in range(CONVERSATIONS)]
    second = cluster.services["rasa-2"]
    run_conversations(cluster, senders, during=second.process.kill)
    assert second.process.wait(timeout=30) is not None and 1 in cluster.down
    for sender in senders:
        said = cluster.user_texts(sender)
        # A turn the killed server had stored before dying may be sent again by the client: never lost, in order.
        assert [m for n, m in enumerate(said) if n == 0 or m != said[n - 1]] == CONSULTATION, said
        assert len(requests_of(cluster, sender)) == 1
