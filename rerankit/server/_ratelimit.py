"""Per-client rate limits: a token bucket per key that refuses (429) instead of waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]

_MAX_CLIENTS = 10_000
"""Buckets kept before full ones are forgotten (anonymous clients are keyed by address)."""


class RateLimiter:
    """``per_minute`` requests per minute for each client, bursting up to ``burst``."""

    __slots__ = ("_buckets", "_clock", "burst", "per_second")

    def __init__(
        self,
        per_minute: float,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, int(per_minute)))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._clock = clock

    def take(self, client: str) -> float:
        """Spend one request of ``client``'s budget: 0.0 if allowed, else the seconds until
        one is available (the request is then refused and costs nothing)."""
        now = self._clock()
        level, stamp = self._buckets.get(client, (self.burst, now))
        level = min(self.burst, level + (now - stamp) * self.per_second)
        if level < 1.0:
            self._buckets[client] = (level, now)
            return (1.0 - level) / self.per_second
        if len(self._buckets) >= _MAX_CLIENTS and client not in self._buckets:
            self._forget_full(now)
        self._buckets[client] = (level - 1.0, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        for client, (level, stamp) in list(self._buckets.items()):
            if level + (now - stamp) * self.per_second >= self.burst:
                del self._buckets[client]
