"""Production shape under load: one Rasa process on SQLite, one on PostgreSQL + Redis, two on PostgreSQL + Redis.

For each: throughput and p50/p95/p99 latency at 1, 8 and 32 concurrent conversations (zero errors expected),
and the RSS of every process. Then the cost of a long conversation: the latency of turn 10 and of turn 300
of one conversation (Rasa 3.6 replays the tracker of the current session on every turn). Then the hot path
before and after: one process on SQLite without the session turn limit and the NLU parse cache, and without
the cache only, at 1 and 8 conversations and over one long conversation.

Runs alone with ``python -m bench.scale`` (the model in models/ is used, trained if needed).
"""

import asyncio
import statistics
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import aiohttp

from bench.console import temporary_database
from bench.load import AUTHORIZATION, BENCH_ENV, QUESTIONS, run_load
from bench.memory import rss_mb
from clinic_assistant import settings
from clinic_assistant.processes import Service, assistant, free_port
from clinic_assistant.store.schema import upgrade

WORK = settings.VAR_DIR / "bench" / "scale"
CONCURRENCY = (1, 8, 32)
TURNS = 24
LONG_CONVERSATION = 300
REDIS_URL = settings.TEST_REDIS_URL
# One process on SQLite with hot-path changes undone, to measure what they are worth.
HOT_PATH_UNDONE = {
    "sqlite-1-no-session-limit-no-nlu-cache": {"SESSION_TURN_LIMIT": "0", "NLU_CACHE_SIZE": "0"},
    "sqlite-1-no-nlu-cache": {"NLU_CACHE_SIZE": "0"},
}


@contextmanager
def configuration(
    model: Path, name: str, rasa_servers: int, shared_stores: bool, settings_env: Optional[Dict[str, str]] = None
) -> Iterator[Tuple[List[str], Dict[str, Service]]]:
    """The assistant in one configuration; yields the Rasa servers' base URLs and every process."""
    log_dir = WORK / name
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if shared_stores:
            tracker = stack.enter_context(temporary_database())
            clinic = stack.enter_context(temporary_database())
            env = {"TRACKER_URL": tracker, "CLINIC_DATABASE_URL": clinic, "LOCK_STORE_URL": REDIS_URL}
        else:
            for old in log_dir.glob("*.db*"):
                old.unlink()
            env = {
                "TRACKER_URL": f"sqlite:///{log_dir / 'tracker.db'}",
                "CLINIC_DATABASE_URL": f"sqlite:///{log_dir / 'clinic.db'}",
            }
        upgrade(env["CLINIC_DATABASE_URL"])
        env["CLINIC_RECORD_SPOOL"] = str(log_dir / "unstored-records.jsonl")
        env.update({**BENCH_ENV, **(settings_env or {})})
        ports = [free_port() for _ in range(rasa_servers)]
        services = stack.enter_context(
            assistant(model, ports[0], free_port(), more_rasa_ports=ports[1:], extra_env=env, log_dir=log_dir)
        )
        yield [f"http://127.0.0.1:{port}" for port in ports], services


def measure(
    model: Path,
    name: str,
    rasa_servers: int,
    shared_stores: bool,
    settings_env: Optional[Dict[str, str]] = None,
    concurrency_levels: Sequence[int] = CONCURRENCY,
) -> dict:
    with configuration(model, name, rasa_servers, shared_stores, settings_env) as (urls, services):
        load = {}
        for concurrency in concurrency_levels:
            result = asyncio.run(run_load(urls, concurrency, TURNS))
            load[str(concurrency)] = {**vars(result), "throughput": result.throughput}
        rss = {service.name: rss_mb(service.process.pid) for service in services.values()}
        long = asyncio.run(long_conversation(urls[0])) if name.startswith("sqlite-1") else None
    return {"load": load, "rss_mb": rss, "long_conversation": long}


async def long_conversation(base_url: str) -> Dict[str, float]:
    """Median latency around turn 10 and around turn 300 of one conversation."""
    sender = f"long-{uuid.uuid4().hex}"
    latencies: List[float] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120), headers=AUTHORIZATION) as session:
        for turn in range(LONG_CONVERSATION):
            started = time.perf_counter()
            message = {"sender": sender, "message": QUESTIONS[turn % len(QUESTIONS)]}
            async with session.post(f"{base_url}/webhooks/rest/webhook", json=message) as reply:
                await reply.read()
            latencies.append((time.perf_counter() - started) * 1000)
    around = lambda turn: statistics.median(latencies[turn - 6:turn + 4])  # noqa: E731 (turns n-5 .. n+4)
    return {"turn_10_ms": around(10), "turn_300_ms": around(LONG_CONVERSATION - 4)}


def scale_figures(model: Path) -> dict:
    figures = {
        "sqlite-1": measure(model, "sqlite-1", 1, shared_stores=False),
        "postgres-redis-1": measure(model, "postgres-redis-1", 1, shared_stores=True),
        "postgres-redis-2": measure(model, "postgres-redis-2", 2, shared_stores=True),
    }
    for name, settings_env in HOT_PATH_UNDONE.items():
        figures[name] = measure(model, name, 1, False, settings_env, concurrency_levels=(1, 8))
    return figures


def print_scale(figures: dict) -> None:
    print("Production shape (REST load, turns round-robin over the Rasa servers):")
    for name, figure in figures.items():
        rss = ", ".join(f"{service} {mb:.0f} MB" for service, mb in figure["rss_mb"].items())
        print(f"  {name}: RSS {rss}")
        for concurrency, row in figure["load"].items():
            print(f"    {concurrency:>2} conversations: {row['throughput']:.1f} req/s, p50 {row['p50_ms']:.0f} ms, "
                  f"p95 {row['p95_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, errors {row['errors']}/{row['requests']}")
    one, two = figures["postgres-redis-1"]["load"], figures["postgres-redis-2"]["load"]
    for concurrency in one:
        ratio = two[concurrency]["throughput"] / one[concurrency]["throughput"]
        print(f"  two processes / one on PostgreSQL + Redis at {concurrency}: {ratio:.2f}x (target 1.3x)")
    for name in ("sqlite-1", *HOT_PATH_UNDONE):
        long = figures[name]["long_conversation"]
        print(f"  one conversation, {name}: turn 10 {long['turn_10_ms']:.0f} ms, turn 300 {long['turn_300_ms']:.0f} ms "
              f"({long['turn_300_ms'] / long['turn_10_ms']:.2f}x; target 1.5x)")


if __name__ == "__main__":
    from clinic_assistant.training import ensure_trained_model

    print_scale(scale_figures(ensure_trained_model()))
