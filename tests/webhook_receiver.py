"""The clinic's webhook, played by a real aiohttp server on 127.0.0.1 in a thread of its own.

It checks every request as a clinic would (signature, freshness, Idempotency-Key matching the payload's
reference), can answer the first N requests of each reference with a 500 on purpose, and keeps one
accepted body per reference: a repeat of an accepted reference is answered 200 and counted, not stored.
Usable from plain and async tests alike, since it runs its own event loop.
"""

import asyncio
import json
import threading
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional

from aiohttp import web

from clinic_assistant.delivery.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from clinic_assistant.processes import free_port


class WebhookReceiver:
    """``start()`` serves at ``url`` until ``stop()``; ``start()`` again serves at the same address."""

    def __init__(self, secret: str, fail_first: int = 0, echo_failures: bool = False) -> None:
        self.secret = secret
        self.fail_first = fail_first  # per reference: that many requests answered 500 before accepting
        self.echo_failures = echo_failures  # a forced 500 echoes the contact data and the body
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/consultations"
        self.accepted: Dict[str, bytes] = {}  # reference -> the one body kept
        self.requests: Dict[str, int] = defaultdict(int)  # reference -> every request that reached the handler
        self.repeats: Dict[str, int] = defaultdict(int)  # reference -> requests after it was accepted
        self.refused: List[str] = []  # why requests were refused (signature, key...)
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "WebhookReceiver":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise TimeoutError("webhook receiver did not start")
        return self

    def stop(self) -> None:
        if not self._loop:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def payloads(self) -> Dict[str, dict]:
        with self._lock:
            return {reference: json.loads(body) for reference, body in self.accepted.items()}

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/consultations", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        ready.set()
        self._loop.run_forever()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = _problem(request, body, self.secret)
        if problem:
            with self._lock:
                self.refused.append(problem)
            return web.Response(status=401 if "signature" in problem else 400, text=problem)
        reference = request.headers[IDEMPOTENCY_HEADER]
        with self._lock:
            self.requests[reference] += 1
            if self.requests[reference] <= self.fail_first:
                return web.Response(status=500, text=_echo(body) if self.echo_failures else "forced failure")
            if reference in self.accepted:
                self.repeats[reference] += 1  # a real clinic would drop it by its Idempotency-Key
            else:
                self.accepted[reference] = body
        return web.json_response({"received": reference})


def _problem(request: web.Request, body: bytes, secret: str) -> Optional[str]:
    """What makes ``request`` unacceptable, or None."""
    if request.content_type != "application/json":
        return f"content type {request.content_type}"
    try:
        timestamp = int(request.headers[TIMESTAMP_HEADER])
        signature = request.headers[SIGNATURE_HEADER]
        reference = request.headers[IDEMPOTENCY_HEADER]
    except (KeyError, ValueError):
        return "missing or malformed signature headers"
    if not signature.startswith("sha256=") or not verify(body, secret, timestamp, signature, time.time()):
        return "bad or stale signature"
    if json.loads(body).get("reference") != reference:
        return "Idempotency-Key is not the payload's reference"
    return None


def _echo(body: bytes) -> str:
    # As careless error pages do: the visitor's contact data, then the whole request.
    values = json.loads(body)
    return f"could not file the request of {values['name']} ({values['phone']}, {values['email']}): {body.decode()}"


def wait_until(condition: Callable[[], object], timeout: float = 10, interval: float = 0.05) -> object:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)
