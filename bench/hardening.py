"""What the channels' hardening shows and costs.

- Fuzzing (tests/fuzzing.py) with many more examples than the tests run: examples tried and failures per channel.
- REST and widget throughput with the input checks, the REST credential and the rate limits, against the same
  server with them taken out (bench/unchecked_rasa.py), alternating the two so drift falls on both alike.
- The event loop under pathological messages: the latency of a route that does no work (the REST channel's
  health route) while long emoji and punctuation runs are being read, against the same route at rest.
"""

import asyncio
import secrets
import statistics
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from bench.load import BENCH_ENV, BENCH_TOKEN, percentile, run_load
from bench.widget_load import run_widget_load
from clinic_assistant import settings
from clinic_assistant.processes import assistant, free_port, rasa_command, rasa_readiness_url, start, wait_until_healthy
from tests.fuzzing import Servers, fuzz_rest, fuzz_sms, fuzz_socketio
from tests.twilio_fake import TwilioFake

WORK = settings.VAR_DIR / "bench" / "hardening"
FUZZ_EXAMPLES = 1000  # per channel
CONCURRENCY, REST_TURNS, WIDGET_TURNS = 8, 24, 12
ROUNDS = 2  # of each variant, alternating
PATHOLOGICAL = ["😀🔥😭🙏" * 1250, "!?." * 1666, "1 2 3 " * 833, "a😀 " * 1666]


@contextmanager
def rasa_server(model: Path, module: str, env: Dict[str, str], name: str) -> Iterator[str]:
    """A Rasa server started as ``python -m <module>`` with the project's arguments, beside its action server."""
    WORK.mkdir(parents=True, exist_ok=True)
    run_env = {**env, "TRACKER_URL": f"sqlite:///{WORK / f'{name}-tracker.db'}"}
    with assistant(model, actions_port=free_port(), with_rasa=False, extra_env=run_env, log_dir=WORK) as services:
        port = free_port()
        command = rasa_command(model, port)
        command[command.index("clinic_assistant.rasa_server")] = module
        server = start(name, command, rasa_readiness_url(port), services["actions"].env, WORK / f"{name}.log")
        try:
            wait_until_healthy(server)
            yield f"http://{settings.RASA_HOST}:{port}"
        finally:
            server.stop()


def throughput(base_url: str) -> Tuple[float, float]:
    """(REST, widget) requests per second at ``CONCURRENCY`` conversations."""
    rest = asyncio.run(run_load(base_url, CONCURRENCY, REST_TURNS)).throughput
    widget = asyncio.run(run_widget_load(base_url, settings.WIDGET_ALLOWED_ORIGINS[0], CONCURRENCY, WIDGET_TURNS))
    return rest, widget.throughput


def loop_latency(base_url: str, token: str, seconds: float = 10) -> Dict[str, float]:
    """Latency of the REST health route at rest, then while pathological messages are read one after another."""
    health = f"{base_url}/webhooks/rest/"
    quiet = _probe(health, 2)
    stop = threading.Event()
    reader = threading.Thread(target=_send_pathological, args=(base_url, token, stop), daemon=True)
    reader.start()
    busy = _probe(health, seconds)
    stop.set()
    reader.join(timeout=120)
    return {"quiet_p50_ms": statistics.median(quiet), "quiet_max_ms": max(quiet),
            "busy_p50_ms": statistics.median(busy), "busy_p99_ms": percentile(busy, 0.99), "busy_max_ms": max(busy)}


def _probe(url: str, seconds: float) -> List[float]:
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as reply:
            reply.read()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    return latencies


def _send_pathological(base_url: str, token: str, stop: threading.Event) -> None:
    import json

    n = 0
    while not stop.is_set():
        body = json.dumps({"sender": f"odd-{n}", "message": PATHOLOGICAL[n % len(PATHOLOGICAL)]}).encode()
        request = urllib.request.Request(f"{base_url}/webhooks/rest/webhook", data=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=120) as reply:
            reply.read()
        n += 1


def hardening_figures(model: Path) -> dict:
    token = BENCH_TOKEN
    env = {**BENCH_ENV, "SANIC_PROXIES_COUNT": "1",
           "CLINIC_DATABASE_URL": f"sqlite:///{WORK / 'clinic.db'}", "CLINIC_RECORD_SPOOL": str(WORK / "spool.jsonl")}
    rates: Dict[str, List[Tuple[float, float]]] = {"without": [], "with": []}
    for _ in range(ROUNDS):
        for variant, module in (("without", "bench.unchecked_rasa"), ("with", "clinic_assistant.rasa_server")):
            with rasa_server(model, module, env, f"rasa-{variant}") as base_url:
                rates[variant].append(throughput(base_url))
    figures = {"throughput": {variant: {"rest": statistics.mean(r for r, _ in runs),
                                        "widget": statistics.mean(w for _, w in runs)}
                              for variant, runs in rates.items()}}
    figures["fuzz"], figures["event_loop"] = _fuzz_and_stall(model, env, token)
    return figures


def _fuzz_and_stall(model: Path, env: Dict[str, str], token: str) -> Tuple[dict, dict]:
    account, auth, public_url = "AC" + secrets.token_hex(16), secrets.token_hex(16), "https://clinic.example/sms"
    with TwilioFake(account, auth) as twilio:
        sms = {"TWILIO_ACCOUNT_SID": account, "TWILIO_AUTH_TOKEN": auth, "TWILIO_FROM_NUMBER": "+18505550100",
               "TWILIO_API_BASE_URL": twilio.base_url, "SMS_WEBHOOK_PUBLIC_URL": public_url}
        with rasa_server(model, "clinic_assistant.rasa_server", {**env, **sms}, "rasa-fuzz") as base_url:
            servers = Servers(base_url, token, settings.WIDGET_ALLOWED_ORIGINS[0], auth, public_url)
            fuzz = {}
            for name, fuzz_channel in (("rest", fuzz_rest), ("socketio", fuzz_socketio), ("sms", fuzz_sms)):
                outcome = fuzz_channel(servers, FUZZ_EXAMPLES)
                fuzz[name] = {"tried": outcome.tried, "failures": outcome.failures}
            fuzz["ready_afterwards"] = _ready(base_url)
            stall = loop_latency(base_url, token)
    return fuzz, stall


def _ready(base_url: str) -> bool:
    with urllib.request.urlopen(rasa_readiness_url(int(base_url.rsplit(":", 1)[1])), timeout=10) as reply:
        return reply.status == 200


def print_hardening(figures: dict) -> None:
    fuzz = figures["fuzz"]
    tried = ", ".join(f"{name} {fuzz[name]['tried']} tried / {len(fuzz[name]['failures'])} failures"
                      for name in ("rest", "socketio", "sms"))
    print(f"Fuzzing: {tried}; every server ready afterwards: {fuzz['ready_afterwards']}")
    for name in ("rest", "socketio", "sms"):
        for failure in fuzz[name]["failures"]:
            print(f"  {name} failure: {failure}")
    before, after = figures["throughput"]["without"], figures["throughput"]["with"]
    for channel in ("rest", "widget"):
        cost = (before[channel] - after[channel]) / before[channel] * 100
        print(f"{channel} throughput at {CONCURRENCY} conversations: {before[channel]:.1f} req/s without the checks, "
              f"{after[channel]:.1f} with them ({cost:+.1f}% cost)")
    loop = figures["event_loop"]
    print(f"Event loop: a no-work route answers in {loop['quiet_p50_ms']:.1f} ms (max {loop['quiet_max_ms']:.0f}) "
          f"at rest; while pathological messages are read, p50 {loop['busy_p50_ms']:.1f} ms, "
          f"p99 {loop['busy_p99_ms']:.0f} ms, max {loop['busy_max_ms']:.0f} ms")


if __name__ == "__main__":
    from clinic_assistant.training import ensure_trained_model

    print_hardening(hardening_figures(ensure_trained_model()))
