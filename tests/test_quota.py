"""Quota backends: where a client's rate-limit buckets live, and Retry-After holding back all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import rerankit
from rerankit import AsyncClient, LocalQuota, Quota
from rerankit._ratelimit import RateLimiter
from rerankit.testing import CohereFake, FakeServer, Reply

from .support import DOCS, FAST_RETRY, QUERY

pytestmark = pytest.mark.anyio

KEY = "quota-key-0123456789-SECRET"
MODEL = "cohere/rerank-v3.5"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(KEY)) as server:
        yield server


class Recording:
    """A backend that never waits and remembers what it was asked."""

    def __init__(self) -> None:
        self.acquired: list[tuple[Quota, int]] = []
        self.penalties: list[tuple[Quota, float]] = []

    async def acquire(self, quota: Quota, tokens: int) -> float:
        self.acquired.append((quota, tokens))
        return 0.0

    def penalise(self, quota: Quota, seconds: float) -> None:
        self.penalties.append((quota, seconds))


def client_for(server: FakeServer, quota: object, **settings: object) -> AsyncClient:
    providers = {"cohere": {"api_key": KEY, "api_base": server.url, **settings}}
    return AsyncClient(providers=providers, retry=FAST_RETRY, quota=quota)  # type: ignore[arg-type]


async def test_a_client_asks_its_backend_for_every_attempt_and_reports_retry_after(
    server: FakeServer,
) -> None:
    backend = Recording()
    server.fail(Reply(status=429, headers={"retry-after-ms": "20"}, body={"message": "slow"}))
    async with client_for(server, backend, requests_per_minute=600, tokens_per_minute=10**6) as c:
        await c.rerank(MODEL, QUERY, DOCS)
    assert len(backend.acquired) == 2  # the 429 and its retry
    quota, tokens = backend.acquired[0]
    assert (quota.provider, quota.requests_per_minute, quota.tokens_per_minute) == (
        "cohere",
        600,
        10**6,
    )
    assert tokens > 0
    assert quota.key is not None
    assert "SECRET" not in quota.key
    assert KEY not in repr(quota)
    assert backend.penalties == [(quota, pytest.approx(0.02))]


async def test_without_limits_the_backend_is_never_asked(server: FakeServer) -> None:
    backend = Recording()
    async with client_for(server, backend) as client:
        await client.rerank(MODEL, QUERY, DOCS)
    assert backend.acquired == []
    assert backend.penalties == []


def test_the_default_backend_is_local_and_a_bad_one_is_refused() -> None:
    assert isinstance(AsyncClient()._watchers.backend, LocalQuota)
    with pytest.raises(rerankit.ConfigurationError, match="quota must be a QuotaBackend"):
        AsyncClient(quota=object())  # type: ignore[arg-type]


def test_retry_after_puts_the_buckets_in_debt_with_no_burst_after() -> None:
    now = [0.0]
    limiter = RateLimiter(requests_per_minute=60, clock=lambda: now[0])
    assert limiter.reserve() == 0.0  # a full minute's burst is there
    limiter.penalise(5.0)
    assert limiter.reserve() == pytest.approx(6.0)  # 5 s of debt, then one request's refill
    now[0] += 100.0  # long after: refilled, the burst is back
    assert limiter.reserve() == 0.0


def test_reservations_queue_like_waiting_callers() -> None:
    now = [0.0]
    limiter = RateLimiter(requests_per_minute=60, tokens_per_minute=600, clock=lambda: now[0])
    delays = [limiter.reserve(100) for _ in range(8)]
    # 600 tokens of burst serve six requests; each further one waits 10 s of token refill
    assert delays == [0.0] * 6 + [pytest.approx(10.0), pytest.approx(20.0)]
    assert limiter.waited == pytest.approx(30.0)


async def test_local_quota_applies_retry_after_to_every_caller_of_the_key() -> None:
    backend = LocalQuota()
    quota = Quota("cohere", "fp", 6000.0, None)
    assert await backend.acquire(quota, 0) == 0.0
    backend.penalise(quota, 0.05)
    assert await backend.acquire(quota, 0) > 0.0
    assert list(backend.limiters) == [("cohere", "fp")]
