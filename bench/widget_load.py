"""A socket.io load generator: N widget visitors at once, each asking its questions one after another."""

import asyncio
import time
from typing import List

import socketio

from bench.load import QUESTIONS, LoadResult, percentile


async def _visitor(base_url: str, origin: str, address: str, turns: int, latencies: List[float], errors: list) -> None:
    client = socketio.AsyncClient(reconnection=False)
    replies: asyncio.Queue = asyncio.Queue()
    confirmed = asyncio.Event()
    client.on("session_confirm", lambda data: confirmed.set())
    client.on("bot_uttered", lambda data: replies.put_nowait(data))
    client.on("error", lambda data: errors.append(data))
    await client.connect(base_url, transports=["polling"], headers={"Origin": origin, "X-Forwarded-For": address})
    await client.emit("session_request", {})
    await asyncio.wait_for(confirmed.wait(), 30)
    for turn in range(turns):
        started = time.perf_counter()
        await client.emit("user_uttered", {"message": QUESTIONS[turn % len(QUESTIONS)]})
        try:
            await asyncio.wait_for(replies.get(), 60)  # the first message of the reply ends the wait
        except asyncio.TimeoutError:
            errors.append("no reply")
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.3)  # let the rest of the turn's messages arrive before the next question
        while not replies.empty():
            replies.get_nowait()
    await client.eio.disconnect(abort=True)


async def run_widget_load(base_url: str, origin: str, concurrency: int, turns: int) -> LoadResult:
    latencies: List[float] = []
    errors: list = []
    started = time.perf_counter()
    await asyncio.gather(*(
        _visitor(base_url, origin, f"203.0.113.{n + 1}", turns, latencies, errors) for n in range(concurrency)
    ))
    elapsed = time.perf_counter() - started - 0.3 * turns  # the pauses between questions are not the server's
    return LoadResult(concurrency, len(latencies), len(errors), elapsed, percentile(latencies, 0.5),
                      percentile(latencies, 0.95), percentile(latencies, 0.99))
