"""Hooks, structured logs and client-side rate limits, over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest

import rerankit
from rerankit import AsyncClient, RerankEvent
from rerankit._ratelimit import RateLimiter
from rerankit.providers import ModelCapabilities
from rerankit.testing import CohereFake, FakeServer, Reply

from .support import DOCS, FAST_RETRY, QUERY

pytestmark = pytest.mark.anyio

KEY = "events-key-0123456789-SECRET"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(KEY)) as server:
        yield server


def client_for(server: FakeServer, **kwargs: object) -> AsyncClient:
    settings = {"api_key": KEY, "api_base": server.url, **kwargs.pop("settings", {})}  # type: ignore[dict-item]
    return AsyncClient(providers={"cohere": settings}, retry=FAST_RETRY, **kwargs)  # type: ignore[arg-type]


async def test_hooks_see_request_retry_response_with_latency_and_usage(server: FakeServer) -> None:
    events: list[RerankEvent] = []
    server.fail(Reply(status=503, body={"message": "busy"}))
    async with client_for(server, hooks=[events.append]) as client:
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    assert [(e.kind, e.attempt) for e in events] == [
        ("request", 1),
        ("retry", 1),
        ("request", 2),
        ("response", 2),
    ]
    retry, response = events[1], events[3]
    assert isinstance(retry.error, rerankit.InternalServerError)
    assert retry.retry_in is not None
    assert response.latency is not None
    assert response.latency > 0
    assert response.usage == rerankit.Usage(search_units=1)
    assert response.request_id == "fake-1"
    assert {(e.provider, e.model, e.documents) for e in events} == {("cohere", "rerank-v3.5", 4)}


async def test_errors_are_events_and_a_broken_hook_is_logged_not_raised(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[RerankEvent] = []

    def broken(event: RerankEvent) -> None:
        raise RuntimeError("metrics backend down")

    server.fail(Reply(status=401, body={"message": "no"}))
    async with client_for(server, hooks=[broken, events.append]) as client:
        with pytest.raises(rerankit.AuthenticationError):
            await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    assert [e.kind for e in events] == ["request", "error", "request", "response"]
    assert "event hook failed" in caplog.text


async def test_batches_report_their_number(server: FakeServer) -> None:
    events: list[RerankEvent] = []
    async with client_for(
        server, hooks=[events.append], settings={"capabilities": {"max_documents": 2}}
    ) as client:
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    assert sorted(e.batch for e in events if e.kind == "response") == [0, 1]  # type: ignore[type-var]


async def test_debug_logs_are_structured_and_never_show_the_key(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rerankit")
    server.fail(Reply(status=500, body={"message": f"bad key {KEY}"}))
    async with client_for(server) as client:
        await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    records = [r for r in caplog.records if hasattr(r, "rerankit_event")]
    assert [r.rerankit_event["kind"] for r in records] == [
        "request",
        "retry",
        "request",
        "response",
    ]
    assert records[1].rerankit_event["error"].startswith("InternalServerError: ")
    assert KEY not in caplog.text
    assert all(KEY not in str(r.__dict__) for r in caplog.records)


async def test_requests_per_minute_make_callers_wait(server: FakeServer) -> None:
    events: list[RerankEvent] = []
    async with client_for(
        server,
        hooks=[events.append],
        settings={"requests_per_minute": 60},  # one per second
    ) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client.rerank("cohere/rerank-v3.5", QUERY, DOCS) for _ in range(61)))
        elapsed = time.perf_counter() - start
    assert len(server.received) == 61
    # The burst of 60 passes; the last call waits for the bucket's refill, a second less the
    # time the burst took (a wide margin even on a busy machine).
    assert elapsed >= 0.25
    assert max(e.rate_limit_wait for e in events if e.kind == "request") > 0.05


async def test_limits_are_kept_per_key_and_can_be_turned_off(server: FakeServer) -> None:
    class Limited(rerankit.providers.Provider):
        name = "limited"
        default_requests_per_minute = 60.0
        api_key_env = ()

        async def rerank(self, request: object, ctx: object) -> rerankit.RerankResponse:
            return rerankit.RerankResponse(
                results=[rerankit.RerankResult(index=0, relevance_score=1.0)]
            )

    rerankit.register_provider("limited", Limited)
    try:
        async with AsyncClient() as client:
            await client.rerank("limited/m", "q", ["a"], api_key="key-a")
            await client.rerank("limited/m", "q", ["a"], api_key="key-b")
            assert len(client._watchers.limiters) == 2
            assert all(name == "limited" for name, _ in client._watchers.limiters)
            assert all(key is None or "key" not in key for _, key in client._watchers.limiters)
        async with AsyncClient(providers={"limited": {"requests_per_minute": 0}}) as client:
            await client.rerank("limited/m", "q", ["a"])
            assert client._watchers.limiters == {}
    finally:
        rerankit.unregister_provider("limited")


async def test_token_bucket_waits_for_tokens() -> None:
    now = [0.0]
    limiter = RateLimiter(requests_per_minute=None, tokens_per_minute=6_000, clock=lambda: now[0])

    async def tick(seconds: float) -> None:
        now[0] += seconds

    await limiter.acquire(6_000)  # the whole minute's budget, at once
    waiting = asyncio.ensure_future(limiter.acquire(100))  # needs 1 s of refill
    await asyncio.sleep(0)
    assert not waiting.done()
    now[0] += 1.0
    await asyncio.wait_for(waiting, 2)
    assert limiter.waited > 0


def test_rate_limit_settings_are_checked() -> None:
    with pytest.raises(rerankit.ConfigurationError, match="requests_per_minute must be >= 0"):
        rerankit.ProviderSettings(requests_per_minute=-1)
    with pytest.raises(rerankit.ConfigurationError, match="hooks must be a list of callables"):
        AsyncClient(hooks=[1])  # type: ignore[list-item]
    assert ModelCapabilities().has_limits is False
