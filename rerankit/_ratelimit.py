"""Client-side rate limits: requests and tokens per minute, as token buckets callers wait on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from rerankit._lifetimes import PerLoop

__all__ = ["RateLimiter", "TokenBucket"]


class TokenBucket:
    """``per_minute`` units per minute, bursting up to ``capacity`` (default: a minute's worth)."""

    __slots__ = ("capacity", "level", "per_second", "stamp")

    def __init__(self, per_minute: float, now: float, capacity: float | None = None) -> None:
        self.capacity = per_minute if capacity is None else capacity
        self.per_second = per_minute / 60.0
        self.level = self.capacity
        self.stamp = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` units are available (0: now), after refilling."""
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_second)
        self.stamp = now
        amount = min(amount, self.capacity)  # a request larger than the whole budget waits
        return 0.0 if self.level >= amount else (amount - self.level) / self.per_second

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)

    def owe(self, seconds: float) -> None:
        """Empty the bucket and put it ``seconds`` of refill in debt (a provider's Retry-After)."""
        self.level = min(self.level, -seconds * self.per_second)

    @property
    def full(self) -> bool:
        """Whether the bucket was full at its last refill."""
        return self.level >= self.capacity


class RateLimiter:
    """Requests and tokens per minute for one provider and key; callers wait, in order.

    ``acquire(tokens)`` returns once one request and ``tokens`` tokens fit in both budgets;
    ``reserve(tokens)`` takes them at once and says how long to wait before sending (for callers
    elsewhere, e.g. in other processes); ``penalise(seconds)`` makes every caller wait that long.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        now = clock()
        self._requests = TokenBucket(requests_per_minute, now) if requests_per_minute else None
        self._tokens = TokenBucket(tokens_per_minute, now) if tokens_per_minute else None
        self._clock = clock
        self._lock = PerLoop(asyncio.Lock)
        self.waited = 0.0
        """Seconds callers spent waiting, in total."""

    @property
    def counts_tokens(self) -> bool:
        return self._tokens is not None

    async def acquire(self, tokens: int = 0) -> None:
        async with self._lock.get():
            while True:
                now = self._clock()
                delay = max(
                    self._requests.wait_for(1, now) if self._requests else 0.0,
                    self._tokens.wait_for(tokens, now) if self._tokens else 0.0,
                )
                if delay <= 0:
                    break
                self.waited += delay
                await asyncio.sleep(delay)
            self._take(tokens)

    def reserve(self, tokens: int = 0) -> float:
        """Take one request and ``tokens`` now; the seconds to wait before using them."""
        now = self._clock()
        delay = max(
            self._requests.wait_for(1, now) if self._requests else 0.0,
            self._tokens.wait_for(tokens, now) if self._tokens else 0.0,
        )
        self._take(tokens)
        self.waited += delay
        return delay

    def penalise(self, seconds: float) -> None:
        """Hold every caller back ``seconds`` (a provider asked to wait), with no burst after."""
        now = self._clock()
        for bucket in (self._requests, self._tokens):
            if bucket is not None:
                bucket.wait_for(0, now)  # refill up to now first
                bucket.owe(seconds)

    def _take(self, tokens: int) -> None:
        if self._requests:
            self._requests.take(1)
        if self._tokens:
            self._tokens.take(tokens)
