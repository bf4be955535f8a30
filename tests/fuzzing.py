"""Property-based fuzzing of the channels against running servers, with Hypothesis.

Random JSON shapes, random Unicode (lone surrogates, NUL, bidirectional overrides included), huge strings,
deep nesting and wrong content types go to the REST channel, the widget's socket.io channel (and the engine.io
transport under it) and Twilio's SMS webhook. The property: every answer is a 2xx or 4xx (or, on socket.io,
an ``error`` event), never a 5xx or a dropped connection. Shared by the tests (a bounded number of examples)
and ``make bench`` (more).
"""

import asyncio
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

# Every character, lone surrogates (category Cs) included, weighted towards the troublesome ones.
ANY_CHARACTER = st.characters(blacklist_categories=())
TROUBLE = st.sampled_from(["\x00", "\udc00", "\ud800", "\u202e", "\u2066", "\x1b", "\ufeff", "😭", "\r\n", "/"])
ANY_TEXT = st.one_of(
    st.text(ANY_CHARACTER, max_size=40),
    st.lists(st.one_of(TROUBLE, st.text(max_size=5)), max_size=20).map("".join),
    st.builds(lambda part, n: part * n, st.sampled_from(["x", "😀", "pain ", "\x00"]), st.integers(0, 7000)),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), ANY_TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(ANY_TEXT, children, max_size=4)),
    max_leaves=12,
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "", "application/json\x00"]
)
FUZZ_SETTINGS = dict(
    deadline=None, database=None, derandomize=False, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@dataclass(frozen=True)
class Servers:
    """Where the running assistant answers, and the credentials a fuzzer needs to get past the front door."""

    rasa_url: str  # http://127.0.0.1:<port>
    rest_token: str
    widget_origin: str
    sms_auth_token: str
    sms_public_url: str  # the URL Twilio signs


@dataclass
class Outcome:
    tried: int = 0
    failures: Optional[List[str]] = None


def random_address() -> str:
    return f"203.0.113.{secrets.randbelow(254) + 1}"


def post(url: str, body: bytes, headers: Dict[str, str]) -> int:
    """The status of one POST; a dropped or refused connection raises."""
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            reply.read()
            return reply.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def answered_sensibly(status: int) -> bool:
    return 200 <= status < 500


@st.composite
def rest_requests(draw: Callable, token: str) -> "tuple[bytes, Dict[str, str]]":
    shape = draw(st.sampled_from(["message", "json", "bytes", "deep"]))
    if shape == "message":
        fields = {"sender": draw(st.one_of(ANY_TEXT, JSON_VALUES)), "message": draw(st.one_of(ANY_TEXT, JSON_VALUES))}
        if draw(st.booleans()):
            fields["metadata"] = draw(JSON_VALUES)
        body = json.dumps(fields).encode()
    elif shape == "json":
        body = json.dumps(draw(JSON_VALUES)).encode()
    elif shape == "deep":
        depth = draw(st.integers(1, 30_000))
        body = (b"[" * depth + b"]" * depth)[:60_000]
    else:
        body = draw(st.binary(max_size=2000))
    authorization = draw(st.sampled_from([f"Bearer {token}"] * 4 + ["", "Bearer nope", f"bearer {token}x"]))
    headers = {"Content-Type": draw(CONTENT_TYPES), "Authorization": authorization, "X-Forwarded-For": random_address()}
    return body, headers


def fuzz_rest(servers: Servers, examples: int) -> Outcome:
    outcome = Outcome(failures=[])
    url = f"{servers.rasa_url}/webhooks/rest/webhook"

    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(rest_requests(servers.rest_token))
    def property_(request: "tuple[bytes, Dict[str, str]]") -> None:
        outcome.tried += 1
        body, headers = request
        status = post(url, body, {k: v for k, v in headers.items() if _header_safe(v)})
        assert answered_sensibly(status), f"REST answered {status} to {body[:200]!r} {headers}"

    _run(property_, outcome)
    return outcome


@st.composite
def sms_forms(draw: Callable) -> Dict[str, str]:
    form = {
        "MessageSid": draw(st.one_of(st.just("SM" + secrets.token_hex(16)), ANY_TEXT)),
        "From": draw(st.one_of(st.just(f"+1850555{secrets.randbelow(10_000):04d}"), ANY_TEXT)),
        "Body": draw(ANY_TEXT),
        "NumMedia": draw(st.one_of(st.just("0"), ANY_TEXT)),
    }
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=10), ANY_TEXT, max_size=3))
    return {**extra, **{k: v for k, v in form.items() if draw(st.integers(0, 9))}}


def fuzz_sms(servers: Servers, examples: int) -> Outcome:
    outcome = Outcome(failures=[])
    url = f"{servers.rasa_url}/webhooks/twilio_sms/webhook"
    validator = RequestValidator(servers.sms_auth_token)

    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(sms_forms(), CONTENT_TYPES, st.booleans())
    def property_(form: Dict[str, str], content_type: str, signed: bool) -> None:
        outcome.tried += 1
        # Encoded as a phone's bytes would be, lone surrogates and all (Twilio's form is UTF-8).
        body = urllib.parse.urlencode(form, encoding="utf-8", errors="surrogatepass").encode()
        signature = _signature(validator, servers.sms_public_url, form) if signed else "forged"
        headers = {"Content-Type": content_type or "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
        status = post(url, body, headers)
        assert answered_sensibly(status), f"SMS answered {status} to {form!r}"

    _run(property_, outcome)
    return outcome


class _SocketVisitor:
    """One socket.io connection driven from synchronous code, on an event loop of its own thread."""

    def __init__(self, servers: Servers) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: List[str] = []
        for name in ("bot_uttered", "session_confirm", "error"):
            self.client.on(name, lambda *_, name=name: self.events.append(name))
        headers = {"Origin": servers.widget_origin, "X-Forwarded-For": random_address()}
        self.call(self.client.connect(servers.rasa_url, transports=["polling"], headers=headers))

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def emit(self, event: str, data: Any) -> None:
        self.call(self.client.emit(event, data))

    def close(self) -> None:
        if self.client.connected:
            self.call(self.client.eio.disconnect(abort=True))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def fuzz_socketio(servers: Servers, examples: int) -> Outcome:
    outcome = Outcome(failures=[])
    visitor = _SocketVisitor(servers)
    events = st.sampled_from(["session_request", "user_uttered", "user_uttered", "session_request", "message"])
    payloads = st.one_of(JSON_VALUES, st.fixed_dictionaries({"message": ANY_TEXT}), st.binary(max_size=300),
                         st.fixed_dictionaries({"session_token": ANY_TEXT, "revoke_token": ANY_TEXT}))
    engine_io_url = _engine_io_session(servers)  # its own, so garbage there cannot end the visitor's

    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(st.one_of(st.tuples(events, payloads), st.tuples(st.just("raw"), st.binary(max_size=500))))
    def property_(example: "tuple[str, Any]") -> None:
        outcome.tried += 1
        event, data = example
        if event == "raw":  # beneath socket.io: an engine.io packet of random bytes on its own request
            status = post(engine_io_url, data, {"Origin": servers.widget_origin, "Content-Type": "text/plain"})
            assert answered_sensibly(status), f"engine.io answered {status} to {data!r}"
            return
        visitor.emit(event, data)
        assert visitor.client.connected, f"the server dropped the connection after {event} {data!r}"

    try:
        _run(property_, outcome)
        unexpected = set(visitor.events) - {"bot_uttered", "session_confirm", "error"}
        if unexpected:
            outcome.failures.append(f"unexpected events {unexpected}")
    finally:
        visitor.close()
    return outcome


def _signature(validator: RequestValidator, url: str, form: Dict[str, str]) -> str:
    try:
        return validator.compute_signature(url, form)
    except UnicodeEncodeError:  # no phone can send a lone surrogate, so Twilio never signs one
        return "unsignable"


def _engine_io_session(servers: Servers) -> str:
    """A fresh engine.io session's polling URL (the handshake's answer is "0" and a JSON object)."""
    url = f"{servers.rasa_url}/socket.io/?EIO=4&transport=polling"
    request = urllib.request.Request(url, headers={"Origin": servers.widget_origin})
    with urllib.request.urlopen(request, timeout=30) as reply:
        handshake = json.loads(reply.read().decode()[1:])
    return f"{url}&sid={handshake['sid']}"


def _run(property_: Callable[[], None], outcome: Outcome) -> None:
    try:
        property_()
    except Exception as error:  # Hypothesis re-raises the smallest failing example's error (a group for several)
        for each in getattr(error, "exceptions", [error]):
            notes = " ".join(getattr(each, "__notes__", []))  # the falsifying example
            outcome.failures.append(f"{type(each).__name__}: {each} {notes}".strip())


def _header_safe(value: str) -> bool:
    """http.client refuses to send a header with line breaks or non-Latin-1 characters at all."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\n" not in value and "\r" not in value
