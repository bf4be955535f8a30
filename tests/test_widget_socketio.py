"""The widget's socket.io channel on the real Rasa server, from a python-socketio client.

The client uses long-polling: in this Rasa 3.6 environment python-socketio's
own client cannot open a websocket (its engineio wants a newer aiohttp).
"""

import asyncio
from typing import Any, Dict, List, Optional

import pytest
import socketio

from clinic_assistant.channels.session_tokens import SessionTokens


class Visitor:
    """One browser tab: a socket.io connection, its session and what it received."""

    def __init__(self, base_url: str, origin: str) -> None:
        self.base_url, self.origin = base_url, origin
        self.client = socketio.AsyncClient(reconnection=False)
        self.replies: List[Dict[str, Any]] = []
        self.errors: List[str] = []
        self.session: Optional[Dict[str, str]] = None
        self.client.on("bot_uttered", self.replies.append)
        self.client.on("error", lambda data: self.errors.append(data["message"]))
        self.client.on("session_confirm", self._confirmed)

    def _confirmed(self, data: Dict[str, str]) -> None:
        self.session = data

    async def open(self, token: Optional[str] = None) -> Dict[str, str]:
        await self.client.connect(self.base_url, transports=["polling"], headers={"Origin": self.origin})
        await self.client.emit("session_request", {"session_token": token} if token else {})
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
    assert len(running_assistant.user_events(session["session_id"])) == 2
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
    await visitor.client.connect(base_url, transports=["polling"], headers={"Origin": origin})
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
        await stranger.client.connect(base_url, transports=["polling"], headers={"Origin": stranger.origin})
