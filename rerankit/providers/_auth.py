"""Credentials that expire: fetched once, shared by concurrent callers, renewed before expiry.

The cloud providers (Bedrock, Vertex AI, watsonx) get their tokens or signing credentials
through a ``TokenCache`` held by the provider instance, so one client fetches a token once,
however many calls run at the same time, and fetches a new one shortly before it expires.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from rerankit._lifetimes import PerLoop

__all__ = ["TokenCache", "now"]

T = TypeVar("T")


def now() -> float:
    """The wall clock (seconds since the epoch) that token expiries are compared with."""
    return time.time()


class TokenCache(Generic[T]):
    """Values (tokens, credentials) per key, each fetched by one caller at a time.

    ``get(key, fetch)`` returns the cached value while it is fresh; otherwise one caller runs
    ``fetch()`` (which returns the value and its expiry as an epoch time, or ``None`` for
    never) while concurrent callers for the same key wait for it. A value is renewed
    ``margin`` seconds before it expires, or halfway through its life when that is shorter.
    """

    def __init__(self, margin: float = 300.0) -> None:
        self.margin = margin
        self._entries: dict[Hashable, tuple[T, float]] = {}
        self._locks: PerLoop[dict[Hashable, asyncio.Lock]] = PerLoop(dict)

    def __repr__(self) -> str:
        return f"TokenCache(entries={len(self._entries)})"

    def _fresh(self, key: Hashable) -> tuple[T] | None:
        entry = self._entries.get(key)
        if entry is not None and now() < entry[1]:
            return (entry[0],)
        return None

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[tuple[T, float | None]]]) -> T:
        """The value for ``key``, fetching it when missing or about to expire."""
        fresh = self._fresh(key)
        if fresh is not None:
            return fresh[0]
        locks = self._locks.get()
        lock = locks.get(key)
        if lock is None:
            lock = locks[key] = asyncio.Lock()
        async with lock:
            fresh = self._fresh(key)
            if fresh is not None:
                return fresh[0]
            value, expires_at = await fetch()
            if expires_at is None:
                renew_at = math.inf
            else:
                renew_at = expires_at - min(self.margin, max(expires_at - now(), 0.0) / 2)
            self._entries[key] = (value, renew_at)
            return value

    def forget(self, key: Hashable) -> None:
        """Drop the value for ``key`` (for example a token the API has just rejected)."""
        self._entries.pop(key, None)
