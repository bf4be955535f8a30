"""The REST channel is for trusted integrations: a credential, a namespace of its own, checked input, limits."""

import http.client
import json
import secrets
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

from clinic_assistant.channels.input_checks import MAX_METADATA_BYTES
from clinic_assistant.store.db import engine_for, flags_for
from tests.conftest import TEST_LIMITS, address_of, wait_for


def body(sender: str, message: str = "what is crps", **more) -> bytes:
    return json.dumps({"sender": sender, "message": message, **more}).encode()


def ready(running_assistant) -> bool:
    with urllib.request.urlopen(f"{running_assistant.base_url}/webhooks/readiness/", timeout=10) as reply:
        return reply.status == 200


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer", "Bearer tökén"],
    ids=["none", "wrong", "basic", "empty", "non-ascii"],
)
def test_every_request_needs_the_token(running_assistant, authorization):
    headers = {"Authorization": authorization} if authorization else {"Authorization": ""}
    status, reply = running_assistant.post_raw(body(f"no-token-{secrets.token_hex(3)}"), headers=headers)
    assert status == 401, reply
    assert "bearer token" in json.loads(reply)["error"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_only_json_bodies_are_taken(running_assistant, content_type):
    """A web page can post text/plain or a form from a visitor's browser without asking; JSON it cannot."""
    status, reply = running_assistant.post_raw(body("plain-body"), content_type=content_type)
    assert status == 415, reply


@pytest.mark.parametrize(
    "raw",
    [
        b'{"sender": "x\\udc00", "message": "hi"}',  # the request that once stopped the whole service
        b'{"sender": "x\\u0000", "message": "hi"}',
        b'{"sender": "x\\u202ey", "message": "hi"}',
        b'{"sender": "two words", "message": "hi"}',
        b'{"sender": "-starts-badly", "message": "hi"}',
        b'{"sender": "sms/../x", "message": "hi"}',
        b'{"sender": "ok", "message": "hi \\udc00 there"}',
        b'{"sender": "ok", "message": "nul\\u0000inside"}',
        b'{"sender": "ok", "message": "bell\\u0007"}',
        b'{"sender": "ok", "message": "hi", "metadata": {"a": {"b": {"c": {"d": {"e": 1}}}}}}',
        b'{"sender": "ok", "message": "hi", "metadata": {"x": "\\udc00"}}',
        json.dumps({"sender": "ok", "message": "hi", "metadata": {"x": "y" * MAX_METADATA_BYTES}}).encode(),
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_text_gets_a_400_and_the_server_keeps_serving(running_assistant, raw):
    status, reply = running_assistant.post_raw(raw)
    assert status == 400, reply
    assert json.loads(reply)["error"]
    assert ready(running_assistant)


def test_a_body_beyond_the_request_limit_is_refused_before_it_is_read(running_assistant):
    """Refused on its announced length, before a byte of the body is taken (so it costs the server nothing)."""
    connection = http.client.HTTPConnection(urlsplit(running_assistant.url).netloc, timeout=30)
    connection.putrequest("POST", urlsplit(running_assistant.url).path)
    for name, value in {"Content-Type": "application/json", "Content-Length": str(5_000_000),
                        "Authorization": f"Bearer {running_assistant.token}"}.items():
        connection.putheader(name, value)
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()
    assert ready(running_assistant)


def test_a_message_with_a_line_break_and_tab_is_fine(running_assistant):
    assert "Type II" in running_assistant.say("tabs-and-lines", "what are the\ntwo types\tof crps")


def test_rest_conversations_cannot_reach_a_widget_or_sms_conversation(running_assistant):
    """A REST caller naming another channel's conversation id gets a conversation of its own."""
    widget_id = secrets.token_hex(16)
    sms_id = "sms-" + secrets.token_hex(16)
    for foreign in (widget_id, sms_id):
        running_assistant.say(foreign, "what are the types of crps")
        assert running_assistant.conversation_events(foreign, "user") == []
        [event] = running_assistant.conversation_events(f"rest-{foreign}", "user")
        assert event["input_channel"] == "rest"


def test_replies_name_the_callers_sender_not_the_internal_id(running_assistant):
    messages = running_assistant.send("recipient-check", "what is crps")
    assert {m["recipient_id"] for m in messages} == {"recipient-check"}


def accepted_before_refusal(post, limit: int) -> "tuple[int, float]":
    """How many posts pass before the first 429 (at most twice the limit), and how long that took."""
    started = time.monotonic()
    for n in range(2 * limit):
        status = post(n)
        if status == 429:
            return n, time.monotonic() - started
        assert status == 200
    raise AssertionError("never limited")


def assert_limit_holds(accepted: int, seconds: float, limit: int) -> None:
    """A burst of ``limit`` passes; after it, only what refilled meanwhile (``limit`` a minute)."""
    assert limit <= accepted <= limit + seconds * limit / 60 + 1, (accepted, seconds)


def test_one_conversation_is_limited_per_minute(running_assistant):
    limit = int(TEST_LIMITS["REST_MAX_MESSAGES_PER_MINUTE"])
    sender = f"chatty-{secrets.token_hex(3)}"
    post = lambda n: running_assistant.post_raw(body(sender, "ok"), address=address_of(sender))[0]  # noqa: E731
    assert_limit_holds(*accepted_before_refusal(post, limit), limit)
    # Other conversations go on.
    assert "Type II" in running_assistant.say(f"calm-{secrets.token_hex(3)}", "what are the two types of crps")


def test_one_address_is_limited_across_its_conversations(running_assistant):
    limit = int(TEST_LIMITS["REST_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE"])
    address = address_of(f"busy-{secrets.token_hex(4)}")
    post = lambda n: running_assistant.post_raw(body(f"busy-{n}-{secrets.token_hex(2)}", "ok"), address=address)[0]  # noqa: E731
    assert_limit_holds(*accepted_before_refusal(post, limit), limit)


def test_a_trusted_slash_command_gets_its_reply_but_never_a_flag(running_assistant, clinic_database):
    """Integrations may send intents; only the safety layer can flag a conversation for staff."""
    sender = f"slash-{secrets.token_hex(3)}"
    assert "988" in running_assistant.say(sender, "/crisis")
    marker = f"flag-marker-{secrets.token_hex(3)}"
    flagged = f"flagged-{secrets.token_hex(3)}"
    running_assistant.say(flagged, "i want to kill myself")  # a real one, so the flag writer has surely run
    engine = engine_for(clinic_database.url)
    wait_for(lambda: flags_for(engine, running_assistant.conversation(flagged)), what="the real crisis flag")
    assert flags_for(engine, running_assistant.conversation(sender)) == [], marker


def test_a_body_over_64_kb_is_refused_with_a_413_that_says_why(running_assistant):
    status, reply = running_assistant.post_raw(body("big", "hi", metadata={"x": "y" * 100_000}))
    assert status == 413 and "at most 65536" in json.loads(reply)["error"]
