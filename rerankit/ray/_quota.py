"""One quota for a Ray cluster: the rate-limit buckets live in one named actor.

Every client using ``ClusterQuota`` asks that actor for a reservation before each request
(one small actor call): the actor takes the request and its tokens from the bucket at once
and answers how long to wait, so N workers together keep the same bucket one client would
(a minute's quota as the burst, refilled continuously). A ``Retry-After`` seen by any worker
puts the bucket in debt for every worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from rerankit._quota import Quota
from rerankit._ratelimit import RateLimiter

__all__ = ["DEFAULT_NAME", "NAMESPACE", "ClusterQuota", "QuotaKeeper"]

DEFAULT_NAME = "rerankit-quota"
NAMESPACE = "rerankit"


class QuotaKeeper:
    """The buckets, one ``RateLimiter`` per quota (provider, key and limits); runs as an actor.

    Its methods are quick and synchronous, so the actor runs them one at a time, in order.
    """

    def __init__(self) -> None:
        self._limiters: dict[Quota, RateLimiter] = {}

    def _limiter(self, quota: Quota) -> RateLimiter:
        limiter = self._limiters.get(quota)
        if limiter is None:
            limiter = self._limiters[quota] = RateLimiter(
                quota.requests_per_minute, quota.tokens_per_minute
            )
        return limiter

    def reserve(self, quota: Quota, tokens: int) -> float:
        """Take one request and ``tokens`` now; the seconds the caller waits before sending."""
        return self._limiter(quota).reserve(tokens)

    def penalise(self, quota: Quota, seconds: float) -> None:
        self._limiter(quota).penalise(seconds)

    def waited(self) -> dict[str, float]:
        """Seconds of waiting handed out so far, per provider."""
        totals: dict[str, float] = {}
        for quota, limiter in self._limiters.items():
            totals[quota.provider] = totals.get(quota.provider, 0.0) + limiter.waited
        return totals


_RemoteKeeper = ray.remote(QuotaKeeper)


class ClusterQuota:
    """A ``QuotaBackend`` shared by a whole Ray cluster, through the named actor ``name``.

    The actor is created on first use (or found, when another process made it first), with no
    CPU of its own. Pass one to ``AsyncClient(quota=...)``; ``rerank_dataset`` does.
    Pickles as its name, so it can be handed to Ray tasks and actors.
    """

    def __init__(self, name: str = DEFAULT_NAME, *, namespace: str = NAMESPACE) -> None:
        self.name = name
        self.namespace = namespace
        self._handle: Any = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.name, self.namespace))

    def __repr__(self) -> str:
        return f"ClusterQuota(name={self.name!r}, namespace={self.namespace!r})"

    @property
    def actor(self) -> Any:
        """The actor holding the buckets (created if no process has yet)."""
        if self._handle is None:
            self._handle = _RemoteKeeper.options(
                name=self.name,
                namespace=self.namespace,
                get_if_exists=True,
                num_cpus=0,
                max_restarts=-1,
            ).remote()
        return self._handle

    async def acquire(self, quota: Quota, tokens: int) -> float:
        delay: float = await self.actor.reserve.remote(quota, tokens)
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def penalise(self, quota: Quota, seconds: float) -> None:
        self.actor.penalise.remote(quota, seconds)  # no need to wait for it

    def waited(self) -> dict[str, float]:
        """Seconds of waiting the buckets handed out so far, per provider (blocks)."""
        result: dict[str, float] = ray.get(self.actor.waited.remote())
        return result


def _rebuild(name: str, namespace: str) -> ClusterQuota:
    return ClusterQuota(name, namespace=namespace)
