"""Per-client rate limits: a token bucket per key that refuses (429) instead of waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

from rerankit._ratelimit import TokenBucket

__all__ = ["RateLimiter"]

_MAX_CLIENTS = 10_000
"""Buckets kept before full ones are forgotten (anonymous clients are keyed by address)."""


class RateLimiter:
    """``per_minute`` requests per minute for each client, bursting up to ``burst``."""

    __slots__ = ("_buckets", "_clock", "burst", "per_minute")

    def __init__(
        self,
        per_minute: float,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self._buckets: dict[str, TokenBucket] = {}
        self._clock = clock

    def take(self, client: str) -> float:
        """Spend one request of ``client``'s budget: 0.0 if allowed, else the seconds until
        one is available (the request is then refused and costs nothing)."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= _MAX_CLIENTS:
                self._forget_full(now)
            bucket = self._buckets[client] = TokenBucket(self.per_minute, now, self.burst)
        wait = bucket.wait_for(1, now)
        if wait > 0:
            return wait
        bucket.take(1)
        return 0.0

    def _forget_full(self, now: float) -> None:
        for client, bucket in list(self._buckets.items()):
            bucket.wait_for(0, now)
            if bucket.full:
                del self._buckets[client]
