"""The widget's socket.io channel on the real Rasa server, from a python-socketio client.

The client uses long-polling: in this Rasa 3.6 environment python-socketio's
own client cannot open a websocket (its engineio wants a newer aiohttp).
"""

import asyncio
import secrets
import sqlite3
import time
from typing import Any, Dict, List, Optional

import pytest
import socketio

from clinic_assistant.channels.session_tokens import SessionTokens
from clinic_assistant.store.db import engine_for, flags_for
from tests.conftest import TEST_LIMITS, address_of


class Visitor:
    """One browser tab: a socket.io connection, its session and what it received."""

    def __init__(self, base_url: str, origin: str, address: Optional[str] = None) -> None:
        self.base_url, self.origin = base_url, origin
        # Each tab from its own client address (as forwarded by the proxy in front), unless a test shares one.
        self.address = address or address_of(secrets.token_hex(8))
        self.client = socketio.AsyncClient(reconnection=False)
        self.replies: List[Dict[str, Any]] = []
        self.errors: List[str] = []
        self.session: Optional[Dict[str, str]] = None
        self.client.on("bot_uttered", self.replies.append)
        self.client.on("error", lambda data: self.errors.append(data["message"]))
        self.client.on("session_confirm", self._confirmed)

    def _confirmed(self, data: Dict[str, str]) -> None:
        self.session = data

    async def connect(self) -> None:
        headers = {"Origin": self.origin, "X-Forwarded-For": self.address}
        await self.client.connect(self.base_url, transports=["polling"], headers=headers)

    async def open(self, token: Optional[str] = None, **fields: Any) -> Dict[str, str]:
        await self.connect()
        await self.request_session(token, **fields)
        return self.session

    async def request_session(self, token: Optional[str] = None, **fields: Any) -> Dict[str, str]:
        self.session = None
        await self.client.emit("session_request", {**({"session_token": token} if token else {}), **fields})
        await until(lambda: self.session)
        return self.session

    async def say(self, text: str, replies: int = 1) -> str:
        before = len(self.replies)
        await self.client.emit("user_uttered", {"message": text})
        await until(lambda: len(self.replies) >= before + replies)
        await asyncio.sleep(0.3)  # let the rest of this turn's messages arrive
        return "\n".join(r.get("text", "") for r in self.replies[before:])

    async def close(self) -> None:
        # abort: a polling client otherwise waits out its pending long-poll (up to the 25 s ping interval)
        await self.client.eio.disconnect(abort=True)


async def until(condition, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "nothing arrived in time"
        await asyncio.sleep(0.05)


@pytest.fixture
def base_url(running_assistant) -> str:
    return running_assistant.base_url


@pytest.fixture
def origin(running_assistant) -> str:
    """The demo page's origin, the one the channel allows."""
    return running_assistant.web_url


async def test_a_new_visitor_gets_a_signed_session_and_answers(base_url, origin):
    visitor = Visitor(base_url, origin)
    session = await visitor.open()
    assert session["session_token"].startswith(session["session_id"] + ".")
    assert "swelling" in (await visitor.say("what are the symptoms of crps", replies=2)).lower()
    await visitor.close()


async def test_the_token_resumes_the_same_conversation(base_url, origin, running_assistant):
    first = Visitor(base_url, origin)
    session = await first.open()
    await first.say("what are the types?", replies=2)
    await first.close()
    again = Visitor(base_url, origin)
    assert (await again.open(session["session_token"]))["session_id"] == session["session_id"]
    assert "causalgia" in (await again.say("and type 2?")).lower()  # a follow-up only the same conversation gets
    assert len(running_assistant.conversation_events(session["session_id"], "user")) == 2
    await again.close()


async def test_a_forged_or_foreign_token_gets_a_fresh_conversation_never_the_victims(base_url, origin):
    victim, intruder = Visitor(base_url, origin), Visitor(base_url, origin)
    victim_session = await victim.open()
    await intruder.open()
    forged = f"{victim_session['session_id']}.{'0' * 64}"
    foreign = SessionTokens(b"another secret").sign(victim_session["session_id"])
    for token in (forged, foreign, victim_session["session_id"]):
        intruder.session = None
        await intruder.client.emit("session_request", {"session_token": token})
        await until(lambda: intruder.session)
        assert intruder.session["session_id"] != victim_session["session_id"]
    await intruder.say("hello")
    await victim.say("what is crps")
    await asyncio.sleep(0.5)
    assert not any("Complex Regional Pain Syndrome" in r.get("text", "") for r in intruder.replies)
    await victim.close()
    await intruder.close()


async def test_bad_input_gets_clear_errors_and_no_crash(base_url, origin):
    visitor = Visitor(base_url, origin)
    await visitor.connect()
    await visitor.client.emit("user_uttered", {"message": "hi"})  # before a session
    await until(lambda: visitor.errors)
    assert "session_request first" in visitor.errors[-1]
    await visitor.client.emit("session_request", "not an object")
    await until(lambda: visitor.session)
    for bad in ("just a string", {"message": 42}, {"message": "x" * 5001}):
        count = len(visitor.errors)
        await visitor.client.emit("user_uttered", bad)
        await until(lambda count=count: len(visitor.errors) > count)
    assert "5000 characters" in visitor.errors[-1]
    assert "swelling" in (await visitor.say("what are the symptoms of crps", replies=2)).lower()
    await visitor.close()


async def test_a_flood_is_rate_limited_with_a_notice_and_others_are_unaffected(base_url, origin):
    flooder, other = Visitor(base_url, origin), Visitor(base_url, origin)
    await flooder.open()
    await other.open()
    for _ in range(25):  # one request each: a burst in one long-polling payload is refused by engine.io itself
        await flooder.client.emit("user_uttered", {"message": "hi"})
        await asyncio.sleep(0.05)
    await until(lambda: any("faster than I can answer" in e for e in flooder.errors), timeout=60)
    assert "swelling" in (await other.say("what are the symptoms of crps", replies=2)).lower()
    await flooder.close()
    await other.close()


async def test_other_origins_cannot_connect(base_url):
    stranger = Visitor(base_url, origin="https://evil.example")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stranger.connect()


def widget_tokens(running_assistant) -> SessionTokens:
    """The running server's token signer (its secret is in the environment it was started with)."""
    return SessionTokens(running_assistant.services["rasa"].env["WIDGET_SESSION_SECRET"].encode())


async def test_the_conversation_limit_holds_across_reconnects(base_url, origin):
    limit = int(TEST_LIMITS["WIDGET_MAX_MESSAGES_PER_MINUTE"])
    visitor = Visitor(base_url, origin)
    session = await visitor.open()
    for _ in range(limit - 1):
        await visitor.client.emit("user_uttered", {"message": "ok"})
        await asyncio.sleep(0.05)
    await visitor.close()
    again = Visitor(base_url, origin)  # a new connection, the same conversation
    assert (await again.open(session["session_token"]))["session_id"] == session["session_id"]
    for _ in range(3):
        await again.client.emit("user_uttered", {"message": "ok"})
        await asyncio.sleep(0.05)
    await until(lambda: any("faster than I can answer" in e for e in again.errors), timeout=60)
    await again.close()


async def test_new_conversations_from_one_address_are_limited(base_url, origin):
    limit = int(TEST_LIMITS["WIDGET_MAX_SESSIONS_PER_ADDRESS_PER_MINUTE"])
    visitor = Visitor(base_url, origin)
    await visitor.open()
    for _ in range(limit + 2):  # each without a token: a new conversation every time
        await visitor.client.emit("session_request", {})
        await asyncio.sleep(0.02)
    await until(lambda: any("Too many new conversations" in e for e in visitor.errors), timeout=30)
    # A visitor elsewhere is unaffected.
    assert (await Visitor(base_url, origin).open())["session_id"]
    await visitor.close()


async def test_messages_from_one_address_are_limited_across_its_conversations(base_url, origin):
    limit = int(TEST_LIMITS["WIDGET_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE"])
    per_conversation = int(TEST_LIMITS["WIDGET_MAX_MESSAGES_PER_MINUTE"])
    address = address_of(secrets.token_hex(8))
    tabs = [Visitor(base_url, origin, address) for _ in range(limit // (per_conversation - 2) + 2)]
    for tab in tabs:
        await tab.open()
    for tab in tabs:
        for _ in range(per_conversation - 2):  # below each conversation's own limit
            await tab.client.emit("user_uttered", {"message": "ok"})
            await asyncio.sleep(0.02)
    await until(lambda: any("faster than I can answer" in e for tab in tabs for e in tab.errors), timeout=120)
    for tab in tabs:
        await tab.close()


async def test_connections_from_one_address_are_limited(base_url, origin):
    limit = int(TEST_LIMITS["WIDGET_MAX_CONNECTIONS_PER_ADDRESS_PER_MINUTE"])
    address = address_of(secrets.token_hex(8))
    refused = 0
    for _ in range(limit + 3):
        tab = Visitor(base_url, origin, address)
        try:
            await tab.connect()
        except socketio.exceptions.ConnectionError:
            refused += 1
            continue
        await tab.close()
    assert refused >= 1


async def test_clear_chat_revokes_the_old_token(base_url, origin, running_assistant):
    visitor = Visitor(base_url, origin)
    old = await visitor.open()
    await visitor.say("what are the types?", replies=2)
    new = await visitor.request_session(None, revoke_token=old["session_token"])  # what "Clear chat" sends
    assert new["session_id"] != old["session_id"]
    intruder = Visitor(base_url, origin)
    assert (await intruder.open(old["session_token"]))["session_id"] != old["session_id"]
    pauses = running_assistant.conversation_events(old["session_id"], "pause")
    assert [p.get("metadata") for p in pauses] == [{"reason": "cleared by the visitor"}]
    await visitor.close()
    await intruder.close()


async def test_a_token_idle_beyond_the_limit_resumes_nothing(base_url, origin, running_assistant):
    visitor = Visitor(base_url, origin)
    session = await visitor.open()
    await visitor.say("what are the types?", replies=2)
    await visitor.close()
    idle = float(running_assistant.services["rasa"].env.get("WIDGET_SESSION_IDLE_HOURS", "24")) * 3600
    with sqlite3.connect(running_assistant.tracker_db) as db:  # the conversation went quiet a day ago
        db.execute(
            "UPDATE events SET timestamp = timestamp - :by, "
            "data = json_set(data, '$.timestamp', json_extract(data, '$.timestamp') - :by) WHERE sender_id = :id",
            {"by": idle + 60, "id": session["session_id"]},
        )
    stale = widget_tokens(running_assistant).sign(session["session_id"], time.time() - idle - 60)
    again = Visitor(base_url, origin)
    assert (await again.open(stale))["session_id"] != session["session_id"]
    fresh = widget_tokens(running_assistant).sign(session["session_id"])
    assert (await again.request_session(fresh))["session_id"] == session["session_id"]  # a token used just now
    await again.close()


@pytest.mark.parametrize("token", ["é" * 32 + ".1.abc", "a" * 32 + ".1." + "é" * 64, "\udc00", 42, ["x"], None])
async def test_odd_tokens_get_a_fresh_session_without_an_error(base_url, origin, token):
    visitor = Visitor(base_url, origin)
    session = await visitor.open(token)
    assert session["session_id"] and not visitor.errors
    await visitor.close()


async def test_a_visitors_slash_command_is_read_as_text(base_url, origin, running_assistant, clinic_database):
    visitor = Visitor(base_url, origin)
    session = await visitor.open()
    reply = await visitor.say("/crisis")
    assert "Suicide & Crisis Lifeline" not in reply
    await visitor.say('/affirm{"more_response": "ketamine/evidence"}')
    [first, second] = running_assistant.conversation_events(session["session_id"], "user")
    assert first["parse_data"]["intent"]["name"] != "crisis"
    assert second["text"].startswith("/affirm")
    assert not [e for e in second["parse_data"]["entities"] if e.get("extractor") == "RegexMessageHandler"]
    assert "ketamine/evidence" not in {e["value"] for e in second["parse_data"]["entities"]}
    await asyncio.sleep(1)
    assert flags_for(engine_for(clinic_database.url), session["session_id"]) == []
    await visitor.close()


async def test_a_long_emoji_message_is_answered_not_dropped(base_url, origin):
    """5,000 emoji escaped as JSON are 60 KB on the wire: within what the server takes, and answered."""
    visitor = Visitor(base_url, origin)
    await visitor.open()
    await visitor.say("😭" * 5000)
    assert visitor.client.connected and not visitor.errors
    await visitor.close()
