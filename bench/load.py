"""A REST load generator: N concurrent conversations, each a run of questions."""

import asyncio
import secrets
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import List, Sequence, Union

import aiohttp

# The benchmarks post from one machine as fast as the servers answer: they carry the REST credential, and the
# limits are far above that pace (the limiters still run, so what they cost is in the figures).
BENCH_TOKEN = secrets.token_urlsafe(24)
BENCH_ENV = {"REST_API_TOKEN": BENCH_TOKEN, **{name: "1000000" for name in (
    "REST_MAX_MESSAGES_PER_MINUTE", "REST_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE", "WIDGET_MAX_MESSAGES_PER_MINUTE",
    "WIDGET_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE", "WIDGET_MAX_SESSIONS_PER_ADDRESS_PER_MINUTE",
    "WIDGET_MAX_CONNECTIONS_PER_ADDRESS_PER_MINUTE",
)}}
AUTHORIZATION = {"Authorization": f"Bearer {BENCH_TOKEN}"}  # a rasa init bot ignores it

QUESTIONS = [
    "hi",
    "what is crps",
    "wat r the symptoms",
    "what are the types?",
    "and type 2?",
    "how is it treated?",
    "does ketamine work better than opioids",
    "whats the evidence for ketamine",
    "yes",
    "how much does it cost",
    "is crps all in my head?",
    "thanks",
]


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def _conversation(
    session: aiohttp.ClientSession, urls: Sequence[str], turns: int, latencies: list, errors: list
) -> None:
    """One conversation; with several servers its turns go round-robin, as a load balancer would send them."""
    sender = f"bench-{uuid.uuid4().hex}"
    offset = int(sender[-4:], 16)
    for turn in range(turns):
        url = urls[(offset + turn) % len(urls)]
        started = time.perf_counter()
        try:
            async with session.post(url, json={"sender": sender, "message": QUESTIONS[turn % len(QUESTIONS)]}) as reply:
                await reply.read()
                if reply.status != 200:
                    errors.append(reply.status)
        except aiohttp.ClientError as error:
            errors.append(str(error))
        latencies.append((time.perf_counter() - started) * 1000)


async def run_load(base_url: Union[str, Sequence[str]], concurrency: int, turns: int) -> LoadResult:
    """``concurrency`` conversations at once, each sending ``turns`` messages (to one server or several)."""
    bases = [base_url] if isinstance(base_url, str) else list(base_url)
    url = [f"{base}/webhooks/rest/webhook" for base in bases]
    latencies: List[float] = []
    errors: list = []
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, headers=AUTHORIZATION) as session:
        await _conversation(session, url, 3 * len(url), [], [])  # warm-up of every server, not counted
        started = time.perf_counter()
        await asyncio.gather(*(_conversation(session, url, turns, latencies, errors) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(
        concurrency=concurrency,
        requests=len(latencies),
        errors=len(errors),
        seconds=elapsed,
        p50_ms=statistics.median(latencies),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
    )
