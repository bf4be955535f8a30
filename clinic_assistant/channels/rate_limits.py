"""Rate limits for the visitor-facing channels, kept in the Rasa process.

A token bucket per key (a conversation, a client address): ``limit`` tokens that refill evenly over
``window`` seconds, so a burst of ``limit`` passes and the long-run rate is ``limit`` per window. Keys are
conversations and addresses, not connections, so a reconnect or a new socket.io session does not reset
them. Behind the load balancer, ``ip_hash`` sends each address to one Rasa process, so per-process buckets
hold per address (see deploy/nginx.conf, which also limits requests before they reach any process).
"""

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

from sanic.request import Request


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, limit: int, window: float = 60.0, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.rate = limit / window
        self.max_keys = max_keys  # least recently seen keys are forgotten first, so memory stays bounded
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when it has none left (nothing is taken then)."""
        if self.limit <= 0:
            return True  # 0 turns the limit off
        now = self.clock()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.limit), now)
        bucket.tokens = min(float(self.limit), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


def client_address(request: Optional[Request]) -> str:
    """The client's address: the proxy's forwarded one where Sanic is told to trust it (SANIC_PROXIES_COUNT)."""
    if request is None:
        return "unknown"
    return request.remote_addr or request.ip or "unknown"
