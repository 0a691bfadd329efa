"""The client answers identical calls from its cache, without a request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import rerankit
from rerankit import AsyncClient, MemoryCache, SQLiteCache
from rerankit.testing import CohereFake, FakeServer, Reply

from .support import DOCS, QUERY, RECORDS, expected_order

pytestmark = pytest.mark.anyio

KEY = "cache-key-0123456789"


@pytest.fixture
def cohere() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(KEY)) as server:
        yield server


def settings(server: FakeServer) -> dict[str, dict[str, str]]:
    return {"cohere": {"api_key": KEY, "api_base": server.url}}


async def test_identical_calls_hit_the_cache(cohere: FakeServer) -> None:
    cache = MemoryCache()
    async with AsyncClient(providers=settings(cohere), cache=cache) as client:
        first = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, top_n=3)
        again = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS, top_n=3)
        other = await client.rerank("cohere/rerank-v3.5", "invoices", DOCS, top_n=3)
        assert client.cache is cache
    assert len(cohere.received) == 2
    assert again == first
    assert again is not first
    assert [r.index for r in again.results] == expected_order(QUERY, DOCS)[:3]
    assert other.results != first.results
    assert (cache.stats.hits, cache.stats.misses) == (1, 2)


async def test_hits_back_fill_this_calls_documents(cohere: FakeServer) -> None:
    cache = MemoryCache()
    async with AsyncClient(providers=settings(cohere), cache=cache) as client:
        await client.rerank("cohere/rerank-v3.5", QUERY, RECORDS, rank_fields=["title", "body"])
        mine = [dict(record) for record in RECORDS]
        response = await client.rerank(
            "cohere/rerank-v3.5", QUERY, mine, rank_fields=["title", "body"]
        )
        bare = await client.rerank(
            "cohere/rerank-v3.5", QUERY, mine, rank_fields=["title", "body"], return_documents=False
        )
    assert len(cohere.received) == 1
    assert response.results[0].document is mine[response.results[0].index]
    assert all(r.document is None for r in bare.results)


async def test_errors_are_never_cached(cohere: FakeServer) -> None:
    cohere.fail(Reply(status=400, body={"message": "nope"}))
    async with AsyncClient(providers=settings(cohere), cache=MemoryCache()) as client:
        with pytest.raises(rerankit.BadRequestError):
            await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
        response = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    assert len(cohere.received) == 2
    assert len(response.results) == len(DOCS)


async def test_sqlite_cache_is_shared_by_clients(cohere: FakeServer, tmp_path: Path) -> None:
    path = tmp_path / "rerank.sqlite"
    async with AsyncClient(providers=settings(cohere), cache=SQLiteCache(path)) as client:
        first = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    reader = SQLiteCache(path)
    async with AsyncClient(providers=settings(cohere), cache=reader) as client:
        second = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    reader.close()
    assert len(cohere.received) == 1
    assert second == first
    assert reader.stats.hits == 1


async def test_a_broken_cache_never_breaks_reranking(
    cohere: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(MemoryCache):
        async def get(self, key: bytes) -> bytes | None:
            raise OSError("cache host unreachable")

        async def set(self, key: bytes, value: bytes) -> None:
            raise OSError("cache host unreachable")

    async with AsyncClient(providers=settings(cohere), cache=Broken()) as client:
        response = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    assert len(response.results) == len(DOCS)
    assert "cache failed" in caplog.text


def test_cache_argument_is_checked() -> None:
    with pytest.raises(rerankit.ConfigurationError, match="cache must be"):
        AsyncClient(cache={})  # type: ignore[arg-type]
