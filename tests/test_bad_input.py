"""Bad input over REST: a sensible reply or a clear 4xx, never a 500."""

import json

import pytest


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀🔥😭", "<script>alert('x')</script><b>hi</b>", "¿Qué es el síndrome de dolor regional complejo?",
     "'; DROP TABLE events; --", "pain " * 999],
)
def test_odd_messages_get_a_reply(running_assistant, text):
    messages = running_assistant.send("bad-input-text", text)
    assert messages and all(m.get("text") for m in messages)
    assert "<script>" not in json.dumps(messages)


@pytest.mark.parametrize(
    "body, status",
    [
        (b'{"sender": "x",', 400),
        (b"not json", 400),
        (b"[]", 400),
        (b'"just a string"', 400),
        (b'{"message": "hi"}', 400),
        (b'{"sender": "", "message": "hi"}', 400),
        (b'{"sender": {"a": 1}, "message": "hi"}', 400),
        (b'{"sender": "x"}', 400),
        (b'{"sender": "x", "message": 123}', 400),
        (b'{"sender": "x", "message": null}', 400),
        (b'{"sender": "x", "message": "hi", "metadata": [1]}', 400),
        (json.dumps({"sender": "s" * 300, "message": "hi"}).encode(), 400),
        (json.dumps({"sender": "x", "message": "a" * 20000}).encode(), 413),
        (b"\xff\xfe\x00garbage", 400),
    ],
)
def test_malformed_requests_get_a_clear_4xx(running_assistant, body, status):
    code, reply = running_assistant.post_raw(body)
    assert code == status, reply
    assert b"Internal Server Error" not in reply


def test_server_keeps_serving_after_bad_input(running_assistant):
    for body in (b"[]", b"not json", b'{"sender": "x"}'):
        running_assistant.post_raw(body)
    assert "Type II" in running_assistant.say("after-bad-input", "what are the two types of crps")


def test_a_caller_cannot_pose_as_another_channel(running_assistant):
    body = json.dumps({"sender": "channel-check", "message": "hi", "input_channel": "twilio"}).encode()
    code, _ = running_assistant.post_raw(body)
    assert code == 200
    assert [e["input_channel"] for e in running_assistant.user_events("channel-check")] == ["rest"]
