"""Where a client's rate-limit buckets live: in the client (``LocalQuota``) or shared elsewhere.

A ``QuotaBackend`` holds one ``RateLimiter`` per ``Quota`` (provider and API key fingerprint,
with its requests and tokens per minute). ``AsyncClient(quota=...)`` picks the backend; the
default keeps the buckets in the client. ``rerankit.ray`` shares them across a Ray cluster.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._ratelimit import RateLimiter

__all__ = ["LocalQuota", "Quota", "QuotaBackend", "check_quota"]


class Quota(msgspec.Struct, frozen=True):
    """One provider and key's limits. ``key`` is a fingerprint of the API key, never the key."""

    provider: str
    key: str | None
    requests_per_minute: float | None
    tokens_per_minute: float | None

    @property
    def counts_tokens(self) -> bool:
        return bool(self.tokens_per_minute)


@runtime_checkable
class QuotaBackend(Protocol):
    """Rate-limit buckets, shared by every client using this backend."""

    async def acquire(self, quota: Quota, tokens: int) -> float:
        """Return once one request and ``tokens`` tokens fit in ``quota``; seconds waited."""
        ...

    def penalise(self, quota: Quota, seconds: float) -> None:
        """The provider asked to wait ``seconds`` (``Retry-After``): hold back every caller."""
        ...


class LocalQuota:
    """Buckets in this process, one ``RateLimiter`` per provider and key (the default)."""

    def __init__(self) -> None:
        self.limiters: dict[tuple[str, str | None], RateLimiter] = {}
        """The limiters made so far, by (provider, key fingerprint)."""

    def limiter(self, quota: Quota) -> RateLimiter:
        limiter = self.limiters.get((quota.provider, quota.key))
        if limiter is None:
            limiter = self.limiters[quota.provider, quota.key] = RateLimiter(
                quota.requests_per_minute, quota.tokens_per_minute
            )
        return limiter

    async def acquire(self, quota: Quota, tokens: int) -> float:
        limiter = self.limiter(quota)
        waited = limiter.waited
        await limiter.acquire(tokens)
        return limiter.waited - waited

    def penalise(self, quota: Quota, seconds: float) -> None:
        self.limiter(quota).penalise(seconds)


def check_quota(quota: object) -> QuotaBackend:
    """``quota`` as a backend (``None``: a new ``LocalQuota``)."""
    if quota is None:
        return LocalQuota()
    if not isinstance(quota, QuotaBackend):
        raise ConfigurationError(
            "quota must be a QuotaBackend (async acquire(quota, tokens) and "
            f"penalise(quota, seconds)), got {type(quota).__name__}"
        )
    return quota
