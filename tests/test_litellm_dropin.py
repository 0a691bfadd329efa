"""Call sites written for ``litellm.rerank`` run unchanged: LiteLLM's own keyword arguments,
its response helpers (``model_dump``, ``_hidden_params``) and its ``meta`` shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, ConfigurationError, MemoryCache, RerankEvent
from rerankit.testing import CohereFake, FakeServer, Reply

from .support import DOCS, FAST_RETRY, QUERY, expected_order

pytestmark = pytest.mark.anyio

KEY = "dropin-key-0123456789"
MODEL = "cohere/rerank-v3.5"
LITELLM_LOGGING = {
    "litellm_call_id": "call-1",
    "litellm_logging_obj": object(),
    "litellm_metadata": {"team": "search"},
    "litellm_session_id": "session-1",
    "litellm_trace_id": "trace-1",
    "model_info": {"id": "deployment-1"},
    "proxy_server_request": {"url": "/rerank", "body": {}},
}


@pytest.fixture
def cohere() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(KEY)) as server:
        yield server


def client_for(server: FakeServer, **kwargs: Any) -> AsyncClient:
    providers = {"cohere": {"api_key": KEY, "api_base": server.url}}
    return AsyncClient(providers=providers, retry=FAST_RETRY, **kwargs)


# --- LiteLLM's keyword arguments ------------------------------------------------------------


async def test_litellm_logging_arguments_are_accepted_and_never_sent(cohere: FakeServer) -> None:
    async with client_for(cohere) as client:
        response = await client.rerank(
            MODEL, QUERY, DOCS, top_n=2, metadata={"request": 7}, user="user-1", **LITELLM_LOGGING
        )
    assert [r.index for r in response.results] == expected_order(QUERY, DOCS)[:2]
    (sent,) = cohere.received
    assert sent.json() == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 2}


async def test_module_level_arerank_takes_litellm_arguments(cohere: FakeServer) -> None:
    response = await rerankit.arerank(
        model=MODEL,
        query=QUERY,
        documents=DOCS,
        api_key=KEY,
        api_base=cohere.url,
        num_retries=0,
        metadata={"request": 7},
        user="user-1",
        **LITELLM_LOGGING,
    )
    assert response.results[0].index == expected_order(QUERY, DOCS)[0]


def test_module_level_rerank_takes_litellm_arguments(cohere: FakeServer) -> None:
    response = rerankit.rerank(
        model=MODEL,
        query=QUERY,
        documents=DOCS,
        api_key=KEY,
        api_base=cohere.url,
        num_retries=0,
        metadata={"request": 7},
        user="user-1",
        **LITELLM_LOGGING,
    )
    assert response.results[0].index == expected_order(QUERY, DOCS)[0]


@pytest.mark.parametrize(("num_retries", "requests"), [(0, 1), (1, 2)])
async def test_num_retries_is_max_retries(
    cohere: FakeServer, num_retries: int, requests: int
) -> None:
    cohere.fail(Reply(status=503, body={"message": "busy"}), Reply(status=503, body={}))
    async with client_for(cohere, max_retries=5, fallbacks=[]) as client:
        with pytest.raises(rerankit.InternalServerError):
            await client.rerank(MODEL, QUERY, DOCS, num_retries=num_retries)
    assert len(cohere.received) == requests


async def test_num_retries_and_max_retries_must_agree(cohere: FakeServer) -> None:
    async with client_for(cohere) as client:
        await client.rerank(MODEL, QUERY, DOCS, num_retries=1, max_retries=1)
        with pytest.raises(ConfigurationError, match=r"num_retries=1 and max_retries=2"):
            await client.rerank(MODEL, QUERY, DOCS, num_retries=1, max_retries=2)
        with pytest.raises(ConfigurationError, match="num_retries must be an int"):
            await client.rerank(MODEL, QUERY, DOCS, num_retries=-1)
        with pytest.raises(ConfigurationError, match="num_retries must be an int"):
            await client.rerank(MODEL, QUERY, DOCS, num_retries=True)
    assert len(cohere.received) == 1


async def test_metadata_and_user_reach_every_event(cohere: FakeServer) -> None:
    events: list[RerankEvent] = []
    cohere.fail(Reply(status=503, body={"message": "busy"}))
    tags = {"request_id": "abc", "tenant": 3}
    async with client_for(cohere, hooks=[events.append]) as client:
        await client.rerank(MODEL, QUERY, DOCS, metadata=tags, user="user-1")
        await client.rerank(MODEL, QUERY, DOCS)
    kinds = ["request", "retry", "request", "response", "request", "response"]
    assert [e.kind for e in events] == kinds
    assert all(e.metadata == tags and e.user == "user-1" for e in events[:4])
    assert events[0].metadata is not tags  # the hook gets its own copy
    assert (events[-1].metadata, events[-1].user) == (None, None)


async def test_metadata_reaches_the_events_of_a_fallback(cohere: FakeServer) -> None:
    events: list[RerankEvent] = []
    cohere.fail(*[Reply(status=503, body={"message": "busy"})] * 3)
    async with client_for(cohere, hooks=[events.append], max_retries=0) as client:
        response = await client.rerank(
            MODEL,
            QUERY,
            DOCS,
            fallbacks=["cohere/rerank-english-v3.0"],
            metadata={"request_id": "abc"},
        )
    assert response.fallback_from == [MODEL]
    assert {e.model for e in events} == {"rerank-v3.5", "rerank-english-v3.0"}
    assert all(e.metadata == {"request_id": "abc"} for e in events)


async def test_bad_metadata_or_user_is_a_configuration_error(cohere: FakeServer) -> None:
    async with client_for(cohere) as client:
        with pytest.raises(ConfigurationError, match="metadata must be a dict"):
            await client.rerank(MODEL, QUERY, DOCS, metadata="abc")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="user must be a str"):
            await client.rerank(MODEL, QUERY, DOCS, user=7)  # type: ignore[arg-type]
    assert cohere.received == []


async def test_rerank_many_jobs_carry_their_own_metadata_and_user(cohere: FakeServer) -> None:
    events: list[RerankEvent] = []
    jobs = [
        {"query": QUERY, "documents": DOCS, "metadata": {"job": 0}, "user": "user-0"},
        (QUERY, DOCS),
        rerankit.RerankJob(query=QUERY, documents=DOCS, metadata={"job": 2, "batch": "b"}),
    ]
    async with client_for(cohere, hooks=[events.append]) as client:
        results = await client.rerank_many(
            MODEL, jobs, concurrency=1, metadata={"batch": "nightly"}, user="all", num_retries=0
        )
    assert all(isinstance(result, rerankit.RerankResponse) for result in results)
    seen = [(e.metadata, e.user) for e in events if e.kind == "response"]
    assert seen == [
        ({"batch": "nightly", "job": 0}, "user-0"),
        ({"batch": "nightly"}, "all"),
        ({"batch": "b", "job": 2}, "all"),
    ]


# --- the response -----------------------------------------------------------------------------


async def test_model_dump_is_plain_json_data(cohere: FakeServer) -> None:
    documents: list[rerankit.Document] = [*DOCS[:2], {"text": DOCS[2], "id": 9}]
    async with client_for(cohere) as client:
        response = await client.rerank(MODEL, QUERY, documents, top_n=2)
    data = response.model_dump()
    assert json.loads(json.dumps(data)) == data
    assert json.loads(response.model_dump_json()) == data
    assert data["results"] == [
        {"index": r.index, "relevance_score": r.relevance_score, "document": r.document}
        for r in response.results
    ]
    assert data["results"][0] == response.results[0].model_dump()
    assert data["usage"] == {"search_units": 1, "input_tokens": None, "total_tokens": None}
    assert data["meta"] == {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
    assert data["cost"] == response.cost is not None
    assert (data["provider"], data["model"], data["id"]) == ("cohere", "rerank-v3.5", "fake-1")
    assert data["fallback_from"] == []
    lean = response.model_dump(exclude_none=True)
    assert lean["usage"] == {"search_units": 1}
    assert "input_tokens" not in json.loads(response.model_dump_json(exclude_none=True))["usage"]
    assert response.model_dump(mode="json") == data
    with pytest.raises(ConfigurationError, match="mode must be"):
        response.model_dump(mode="yaml")  # type: ignore[arg-type]


async def test_results_without_documents_dump_document_as_none(cohere: FakeServer) -> None:
    async with client_for(cohere) as client:
        response = await client.rerank(MODEL, QUERY, DOCS, return_documents=False)
    result = response.results[0]
    assert result.model_dump() == {
        "index": result.index,
        "relevance_score": result.relevance_score,
        "document": None,
    }
    assert result.model_dump(exclude_none=True) == dict(result)


async def test_hidden_params_mirror_cost_provider_and_model(cohere: FakeServer) -> None:
    async with client_for(cohere, prices={MODEL: {"per_search_unit": 0.0015}}) as client:
        response = await client.rerank(MODEL, QUERY, DOCS)
    assert response.cost == pytest.approx(0.0015)
    assert response._hidden_params["response_cost"] == response.cost
    assert response._hidden_params["custom_llm_provider"] == "cohere"
    assert response._hidden_params["litellm_model_name"] == MODEL
    assert response.hidden_params == response._hidden_params


@pytest.mark.parametrize(("api_version", "written"), [("v2", "2"), ("v1", "1")])
async def test_meta_api_version_is_written_as_cohere_writes_it(
    cohere: FakeServer, api_version: str, written: str
) -> None:
    async with client_for(cohere, cache=MemoryCache()) as client:
        fresh = await client.rerank(MODEL, QUERY, DOCS, api_version=api_version)
        cached = await client.rerank(MODEL, QUERY, DOCS, api_version=api_version)
    assert len(cohere.received) == 1
    (sent,) = cohere.received
    assert sent.path == f"/{api_version}/rerank"
    assert fresh.api_version == cached.api_version == api_version
    assert fresh.meta["api_version"] == cached.meta["api_version"] == {"version": written}
    assert fresh["meta"] == fresh.model_dump()["meta"] == fresh.meta
