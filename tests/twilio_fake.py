"""Twilio's Messages API, played by a real HTTP server on 127.0.0.1 in a thread of its own.

It speaks Twilio's protocol as twilio-python expects it: HTTP Basic auth with the account SID and auth token,
a form-encoded ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, a 201 message resource on success and
Twilio-style error JSON otherwise. Tests can make the next N requests (or all of them) fail with a chosen status,
and slow every answer down by ``delay`` seconds. Usable from plain and async tests alike, since it has its own thread.
"""

import base64
import binascii
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs

API_VERSION = "2010-04-01"
_MESSAGES_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Twilio's own error codes for the statuses a test may force.
_FORCED_CODES = {400: 21211, 401: 20003, 403: 20403, 404: 20404, 429: 20429, 500: 20500, 502: 20502, 503: 20503}
_REASONS = {
    400: "The 'To' number is not a valid phone number.",
    401: "Authenticate",
    403: "Forbidden",
    404: "The requested resource was not found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class TwilioFake:
    """``with TwilioFake(sid, token) as twilio:`` serves at ``twilio.base_url`` until the block ends."""

    def __init__(self, account_sid: str, auth_token: str, delay: float = 0.0) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.delay = delay  # seconds every answer waits, to show a sender does not block its loop meanwhile
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._sent: List[dict] = []
        self._requests: List[dict] = []
        self._fail_next: List[int] = []  # statuses for the next requests, first one first
        self._fail_all: Optional[int] = None
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "TwilioFake":
        # Port 0: the kernel picks a free port, so no race with other servers of the run.
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        # A short poll interval: stop() waits for the serving loop to notice, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None

    def __enter__(self) -> "TwilioFake":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def sent(self) -> List[dict]:
        """Accepted messages, oldest first: ``{"sid", "to", "from_", "body"}``."""
        with self._lock:
            return [dict(message) for message in self._sent]

    @property
    def requests(self) -> List[dict]:
        """Every request that reached the server, failed ones included: method, path, status, form."""
        with self._lock:
            return [dict(request) for request in self._requests]

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> List[dict]:
        """Block until at least ``n`` messages were accepted, and return them all."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._sent) >= n, timeout):
                raise AssertionError(f"expected {n} message(s) within {timeout}s, got {self._sent}")
            return [dict(message) for message in self._sent]

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()
            self._requests.clear()

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._fail_next.extend([status] * n)

    def fail_all(self, status: int) -> None:
        with self._lock:
            self._fail_all = status

    def recover(self) -> None:
        with self._lock:
            self._fail_next.clear()
            self._fail_all = None

    def handle(self, method: str, path: str, headers: Dict[str, str], form: Dict[str, str]) -> Tuple[int, dict]:
        """Twilio's answer to one request, as (status, JSON payload)."""
        with self._lock:
            forced = self._fail_next.pop(0) if self._fail_next else self._fail_all
        status, payload = (
            (forced, _error(forced, _FORCED_CODES.get(forced, forced), _REASONS.get(forced, "Forced failure")))
            if forced
            else self._answer(method, path, headers, form)
        )
        with self._arrived:
            self._requests.append({"method": method, "path": path, "status": status, "form": form})
            if status == 201:
                message = {"sid": payload["sid"], "to": form["To"], "from_": payload["from"], "body": payload["body"]}
                self._sent.append(message)
                self._arrived.notify_all()
        return status, payload

    def _answer(self, method: str, path: str, headers: Dict[str, str], form: Dict[str, str]) -> Tuple[int, dict]:
        if _basic_auth(headers.get("Authorization", "")) != (self.account_sid, self.auth_token):
            return 401, _error(401, 20003, "Authenticate")
        match = _MESSAGES_PATH.match(path)
        if not match or match["account"] != self.account_sid:
            return 404, _error(404, 20404, f"The requested resource {path} was not found")
        if method != "POST":
            return 405, _error(405, 20004, "Method not allowed")
        if not form.get("To"):
            return 400, _error(400, 21604, "A 'To' phone number is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 400, _error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body") and not form.get("MediaUrl"):
            return 400, _error(400, 21602, "Message body is required.")
        return 201, self._message(form)

    def _message(self, form: Dict[str, str]) -> dict:
        sid = "SM" + uuid.uuid4().hex
        now = format_datetime(datetime.now(timezone.utc))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(_segments(form.get("Body", ""))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if form.get("MessagingServiceSid") and not form.get("From") else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as twilio-python's pooled aiohttp session expects

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake: TwilioFake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        # Twilio reads the first value of a repeated field, except MediaUrl which we only test for presence.
        form = {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}
        status, payload = fake.handle(self.command, self.path.split("?")[0], dict(self.headers), form)
        if fake.delay:
            time.sleep(fake.delay)
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (its timeout); nothing to answer

    def log_message(self, *_: object) -> None:
        pass  # keep test output quiet


def _basic_auth(header: str) -> Optional[Tuple[str, str]]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _error(status: int, code: int, message: str) -> dict:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": more_info, "status": status}


def _segments(body: str) -> int:
    # GSM-7 fits 160 characters in one segment (153 when split); anything else is UCS-2: 70 (67).
    single, part = (160, 153) if set(body) <= _GSM7 else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // part)
