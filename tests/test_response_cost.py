"""Every response carries its cost from the price table; unknown prices stay None."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import rerankit
from rerankit import AsyncClient
from rerankit.testing import CohereFake, FakeServer

from .support import DOCS, QUERY

pytestmark = pytest.mark.anyio

KEY = "cost-key-0123456789"


@pytest.fixture
def cohere() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(KEY)) as server:
        yield server


async def test_cost_from_the_shipped_table_and_overrides(cohere: FakeServer) -> None:
    settings = {"cohere": {"api_key": KEY, "api_base": cohere.url}}
    async with AsyncClient(providers=settings) as client:
        response = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    assert response.usage.search_units == 1
    price = rerankit.PriceTable.default().lookup("cohere", "rerank-v3.5")
    assert price is not None
    assert response.cost == pytest.approx(price.per_search_unit)
    cheaper = {"cohere/rerank-v3.5": {"per_search_unit": 0.0015}}
    async with AsyncClient(providers=settings, prices=cheaper) as client:
        response = await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)
    assert response.cost == pytest.approx(0.0015)


async def test_unknown_price_or_usage_is_none_never_zero(cohere: FakeServer) -> None:
    response = await rerankit.arerank("local/bm25", QUERY, DOCS)
    assert response.cost is None
    settings = {"cohere": {"api_key": KEY, "api_base": cohere.url}}
    async with AsyncClient(providers=settings, prices={"cohere/rerank-v3.5": None}) as client:
        assert (await client.rerank("cohere/rerank-v3.5", QUERY, DOCS)).cost is None


async def test_split_calls_cost_what_every_request_reported(cohere: FakeServer) -> None:
    settings = {
        "cohere": {"api_key": KEY, "api_base": cohere.url, "capabilities": {"max_documents": 2}}
    }
    async with AsyncClient(
        providers=settings, prices={"cohere/*": {"per_search_unit": 0.01}}
    ) as client:
        response = await client.rerank("cohere/rerank-english-v3.0", QUERY, DOCS)
    assert response.provider_meta["batches"] == 2
    assert response.usage.search_units == 2
    assert response.cost == pytest.approx(0.02)


def test_bad_price_overrides_fail_when_the_client_is_made() -> None:
    with pytest.raises(rerankit.ConfigurationError, match="per_search_unit must be >= 0"):
        AsyncClient(prices={"cohere/rerank-v3.5": {"per_search_unit": -1}})
