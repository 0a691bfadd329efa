"""Fallback chains over real HTTP, and many queries in one call."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, RerankJob
from rerankit.testing import CohereFake, FakeServer, Reply, VoyageFake, overlap_score

from .support import DOCS, FAST_RETRY, QUERY, expected_order

pytestmark = pytest.mark.anyio

KEY = "fallback-key-0123456789"


@pytest.fixture
def cohere() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(KEY)) as server:
        yield server


@pytest.fixture
def voyage() -> Iterator[FakeServer]:
    with FakeServer(VoyageFake(KEY)) as server:
        yield server


def settings(cohere: FakeServer, voyage: FakeServer) -> dict[str, Any]:
    return {
        "cohere": {"api_key": KEY, "api_base": cohere.url},
        "voyage": {"api_key": KEY, "api_base": voyage.url},
    }


@pytest.mark.parametrize(
    "fault",
    [
        Reply(status=429, body={"message": "rate limited"}, headers={"Retry-After": "0"}),
        Reply(status=503, body={"message": "down"}),
        Reply(reset=True),
    ],
)
async def test_retryable_failures_fall_back_in_order(
    cohere: FakeServer, voyage: FakeServer, fault: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    cohere.fail(*[fault] * 3)
    async with AsyncClient(providers=settings(cohere, voyage), retry=FAST_RETRY) as client:
        response = await client.rerank(
            "cohere/rerank-v3.5", QUERY, DOCS, top_n=2, fallbacks=["voyage/rerank-2.5"]
        )
    assert len(cohere.received) == 3  # the model's own retries come first
    assert len(voyage.received) == 1
    assert response.provider == "voyage"
    assert response.model == "rerank-2.5"
    assert response.fallback_from == ["cohere/rerank-v3.5"]
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    assert "falling back to voyage/rerank-2.5" in caplog.text


async def test_bad_requests_do_not_fall_back(cohere: FakeServer, voyage: FakeServer) -> None:
    cohere.fail(Reply(status=400, body={"message": "bad"}))
    async with AsyncClient(providers=settings(cohere, voyage), retry=FAST_RETRY) as client:
        with pytest.raises(rerankit.BadRequestError):
            await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, fallbacks=["voyage/rerank-2.5"])
    assert voyage.received == []


async def test_client_chain_per_model_and_last_resort_local(
    cohere: FakeServer, voyage: FakeServer
) -> None:
    cohere.fail(*[Reply(status=500)] * 3)
    voyage.fail(*[Reply(status=502)] * 3)
    async with AsyncClient(
        providers=settings(cohere, voyage),
        retry=FAST_RETRY,
        fallbacks={"cohere/rerank-v3.5": ["voyage/rerank-2.5", "local/bm25"]},
    ) as client:
        response = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
        assert response.provider == "local"
        assert response.fallback_from == ["cohere/rerank-v3.5", "voyage/rerank-2.5"]
        assert response.score_kind == "unknown"
        no_chain = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)  # cohere is back
        assert no_chain.fallback_from == []
        cohere.fail(*[Reply(status=500)] * 3)
        with pytest.raises(rerankit.InternalServerError):  # a call can turn the chain off
            await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, fallbacks=[])


async def test_every_model_failing_raises_the_last_error(
    cohere: FakeServer, voyage: FakeServer
) -> None:
    cohere.fail(*[Reply(status=500)] * 3)
    voyage.fail(*[Reply(status=429, body={"message": "quota"})] * 3)
    async with AsyncClient(providers=settings(cohere, voyage), retry=FAST_RETRY) as client:
        with pytest.raises(rerankit.RateLimitError) as info:
            await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, fallbacks=["voyage/rerank-2.5"])
    assert info.value.provider == "voyage"


async def test_fallback_options_stay_with_their_model(
    cohere: FakeServer, voyage: FakeServer
) -> None:
    cohere.fail(*[Reply(status=503)] * 3)
    async with AsyncClient(
        providers={"cohere": {"api_key": KEY, "api_base": cohere.url}}, retry=FAST_RETRY
    ) as client:
        response = await client.rerank(
            "cohere/rerank-v3.5",
            QUERY,
            DOCS,
            priority=1,  # cohere's own option: it stays with cohere
            fallbacks=[{"model": "voyage/rerank-2.5", "api_key": KEY, "api_base": voyage.url}],
        )
    assert response.provider == "voyage"
    assert "priority" not in voyage.received[0].json()


def test_fallback_specs_are_checked() -> None:
    with pytest.raises(rerankit.ConfigurationError, match=r"fallbacks\[0\]"):
        AsyncClient(fallbacks=[42])  # type: ignore[list-item]
    with pytest.raises(rerankit.ConfigurationError, match=r"fallbacks\['m'\]\[0\]"):
        AsyncClient(fallbacks={"m": [None]})  # type: ignore[list-item]


async def test_rerank_many_keeps_order_reports_progress_and_per_job_errors(
    cohere: FakeServer,
) -> None:
    queries = [f"{word} settings" for word in ("reset", "password", "router", "invoices")] * 5
    jobs: list[Any] = [(q, DOCS) for q in queries]
    jobs[3] = {"query": queries[3], "documents": DOCS, "top_n": 1}
    jobs[7] = RerankJob(query="", documents=DOCS)  # invalid: empty query
    seen: list[tuple[int, int]] = []
    async with AsyncClient(
        providers={"cohere": {"api_key": KEY, "api_base": cohere.url}}
    ) as client:
        results = await client.rerank_many(
            "cohere/rerank-v3.5",
            jobs,
            top_n=2,
            concurrency=4,
            on_progress=lambda done, total: seen.append((done, total)),
        )
    assert len(results) == len(jobs)
    assert isinstance(results[7], rerankit.ConfigurationError)
    for position, result in enumerate(results):
        if position == 7:
            continue
        assert isinstance(result, rerankit.RerankResponse)
        cut = 1 if position == 3 else 2
        assert [r.index for r in result.results] == expected_order(queries[position], DOCS)[:cut]
    assert seen[-1] == (len(jobs), len(jobs))
    assert [done for done, _ in seen] == list(range(1, len(jobs) + 1))


async def test_rerank_many_bounds_concurrency_and_checks_jobs() -> None:
    active = peak = 0

    class Slow(rerankit.providers.Provider):
        name = "slow"

        async def rerank(self, request: Any, ctx: Any) -> rerankit.RerankResponse:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.005)
            active -= 1
            return rerankit.RerankResponse(
                results=[
                    rerankit.RerankResult(index=i, relevance_score=0.0)
                    for i in range(len(request.documents))
                ]
            )

    rerankit.register_provider("slow", Slow)
    try:
        results = await rerankit.arerank_many("slow/m", [("q", ["a"])] * 30, concurrency=3)
        assert len(results) == 30
        assert peak == 3
        good, bad = await rerankit.arerank_many("slow/m", [("q", ["a"]), "not a job"])
        assert isinstance(good, rerankit.RerankResponse)
        assert isinstance(bad, rerankit.ConfigurationError)
        assert "jobs[1]" in str(bad)
        with pytest.raises(rerankit.ConfigurationError, match="jobs must be a list"):
            await rerankit.arerank_many("slow/m", 3)  # type: ignore[arg-type]
    finally:
        rerankit.unregister_provider("slow")


def test_sync_rerank_many_reports_progress_from_the_loop_thread(cohere: FakeServer) -> None:
    threads: set[int] = set()
    with rerankit.Client(providers={"cohere": {"api_key": KEY, "api_base": cohere.url}}) as client:
        results = client.rerank_many(
            "cohere/rerank-v3.5",
            [(QUERY, DOCS)] * 3,
            on_progress=lambda done, total: threads.add(threading.get_ident()),
        )
    assert all(isinstance(r, rerankit.RerankResponse) for r in results)
    assert threading.get_ident() not in threads
    assert [r.index for r in results[0].results] == sorted(  # type: ignore[union-attr]
        range(len(DOCS)), key=lambda i: (-overlap_score(QUERY, DOCS[i]), i)
    )


async def test_a_failing_progress_callback_is_logged_not_fatal(
    cohere: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(done: int, total: int) -> None:
        raise RuntimeError("progress bar crashed")

    caplog.set_level(logging.ERROR)
    async with AsyncClient(
        providers={"cohere": {"api_key": KEY, "api_base": cohere.url}}
    ) as client:
        results = await client.rerank_many(
            "cohere/rerank-v3.5", [(QUERY, DOCS)] * 2, on_progress=broken
        )
    assert all(isinstance(r, rerankit.RerankResponse) for r in results)
    assert "on_progress callback" in caplog.text
