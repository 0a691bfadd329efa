"""The Haystack adapter after an ``InMemoryBM25Retriever`` in a ``Pipeline``, run sync and
async, with ``local/bm25`` and with the fake Cohere server; serialisation of its key."""

from __future__ import annotations

import threading
from typing import Any

import haystack
import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.core.errors import PipelineRuntimeError, SerializationError
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import Secret

import rerankit
from rerankit import AuthenticationError, ConfigurationError, UnknownProviderError
from rerankit.integrations.haystack import RerankitRanker
from rerankit.testing import CohereFake, FakeServer

from .integrations_support import (
    API_KEY,
    METADATA,
    QUERY,
    TEXTS,
    ThreadLog,
    cohere_order,
    hooked_client,
    rendered,
)

pytestmark = pytest.mark.anyio

KEY_VARIABLE = "RERANKIT_TEST_RANKER_KEY"


@pytest.fixture
def documents() -> list[Document]:
    return [Document(content=t, meta=m) for t, m in zip(TEXTS, METADATA, strict=True)]


def pipeline(documents: list[Document], ranker: RerankitRanker) -> Pipeline:
    """An ``InMemoryBM25Retriever`` over ``documents``, its results ranked by ``ranker``.

    In Haystack 2.x the async runs need an ``AsyncPipeline``; in 3.x ``Pipeline`` has both.
    """
    store = InMemoryDocumentStore()
    store.write_documents(documents)
    cls = getattr(haystack, "AsyncPipeline", Pipeline)
    built: Pipeline = cls()
    built.add_component("retriever", InMemoryBM25Retriever(store, top_k=10))
    built.add_component("ranker", ranker)
    built.connect("retriever.documents", "ranker.documents")
    return built


def inputs(query: str = QUERY) -> dict[str, Any]:
    return {"retriever": {"query": query}, "ranker": {"query": query}}


def positions(documents: list[Document]) -> list[int]:
    return [document.meta["position"] for document in documents]


def test_bm25_in_a_pipeline(documents: list[Document]) -> None:
    built = pipeline(documents, RerankitRanker("local/bm25", top_k=3))
    ranked = built.run(inputs(), include_outputs_from={"retriever"})
    retrieved, found = ranked["retriever"]["documents"], ranked["ranker"]["documents"]

    texts = [d.content for d in retrieved]
    direct = rerankit.rerank("local/bm25", QUERY, texts, top_n=3).results
    assert [d.id for d in found] == [retrieved[r.index].id for r in direct]
    assert [d.score for d in found] == [r.relevance_score for r in direct]
    assert found[0].meta == retrieved[direct[0].index].meta  # metadata kept


async def test_bm25_async_in_a_pipeline(documents: list[Document]) -> None:
    built = pipeline(documents, RerankitRanker("local/bm25", top_n=2))
    ranked = await built.run_async(inputs(), include_outputs_from={"retriever"})
    retrieved, found = ranked["retriever"]["documents"], ranked["ranker"]["documents"]

    direct = rerankit.rerank("local/bm25", QUERY, [d.content for d in retrieved], top_n=2)
    assert [d.id for d in found] == [retrieved[r.index].id for r in direct.results]


async def test_async_path_awaits_the_shared_client_on_the_callers_loop(
    documents: list[Document], cohere_server: FakeServer
) -> None:
    log = ThreadLog()
    async with hooked_client(cohere_server, log) as client:
        ranker = RerankitRanker("cohere/rerank-v3.5", top_k=2, client=client)
        ranked = await pipeline(documents, ranker).run_async(inputs())

    found = ranked["ranker"]["documents"]
    assert log.threads == [threading.current_thread().name]  # run_async, no worker thread
    body = cohere_server.received[0].json()
    assert (body["model"], body["top_n"]) == ("rerank-v3.5", 2)
    retrieved = body["documents"]
    assert [d.content for d in found] == [retrieved[i] for i in cohere_order(QUERY, retrieved)[:2]]


def test_sync_pipeline_with_a_shared_async_client(
    documents: list[Document], cohere_server: FakeServer
) -> None:
    log = ThreadLog()
    client = hooked_client(cohere_server, log)
    ranker = RerankitRanker("cohere/rerank-v3.5", top_k=2, client=client)
    ranked = pipeline(documents, ranker).run(inputs())

    assert positions(ranked["ranker"]["documents"]) == cohere_order(QUERY, TEXTS)[:2]
    assert log.threads == ["rerankit-loop"]


def test_cohere_ranker_arguments_reach_the_provider(
    documents: list[Document], cohere_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, API_KEY)
    ranker = RerankitRanker(
        api_key=Secret.from_env_var(KEY_VARIABLE),
        api_base_url=cohere_server.url,
        top_k=3,
        meta_fields_to_embed=["title"],
        meta_data_separator=" | ",
    )
    ranked = ranker.run(QUERY, documents, top_k=1)

    sent = cohere_server.received[0]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    embedded = [f"{m['title']} | {t}" for t, m in zip(TEXTS, METADATA, strict=True)]
    assert sent.json() == {
        "model": "rerank-v3.5",  # CohereRanker's default model
        "query": QUERY,
        "documents": embedded,
        "top_n": 1,  # run's top_k wins over the component's
    }
    assert positions(ranked["documents"]) == cohere_order(QUERY, embedded)[:1]


def test_rank_fields_come_from_metadata(
    documents: list[Document], cohere_server: FakeServer
) -> None:
    ranker = RerankitRanker(
        "cohere/rerank-v3.5",
        api_key=Secret.from_token(API_KEY),
        api_base=cohere_server.url,
        rank_fields=["title", "text"],
    )
    ranked = ranker.run(QUERY, documents)

    assert cohere_server.received[0].json()["documents"] == [rendered(i) for i in range(len(TEXTS))]
    assert sorted(positions(ranked["documents"])) == list(range(len(TEXTS)))


async def test_empty_lists_make_no_call(cohere_server: FakeServer) -> None:
    ranker = RerankitRanker(
        "cohere/rerank-v3.5", api_key=Secret.from_token(API_KEY), api_base=cohere_server.url
    )

    assert ranker.run(QUERY, []) == {"documents": []}
    assert await ranker.run_async(QUERY, []) == {"documents": []}
    assert pipeline([], ranker).run(inputs())["ranker"]["documents"] == []
    assert cohere_server.requests == 0


async def test_errors_are_rerankits_typed_errors_without_the_key(
    documents: list[Document],
) -> None:
    wrong = "wrong-key-0123456789"
    with FakeServer(CohereFake(API_KEY)) as server:
        ranker = RerankitRanker(
            "cohere/rerank-v3.5", api_key=Secret.from_token(wrong), api_base_url=server.url
        )
        with pytest.raises(AuthenticationError) as caught:
            await ranker.run_async(QUERY, documents)
        assert wrong not in str(caught.value)
        with pytest.raises(PipelineRuntimeError) as wrapped:  # Haystack wraps it, as its cause
            pipeline(documents, ranker).run(inputs())
    assert isinstance(wrapped.value.__cause__, AuthenticationError)
    assert wrong not in str(wrapped.value)
    with pytest.raises(UnknownProviderError):
        RerankitRanker("nope/model").run(QUERY, documents)
    with pytest.raises(ConfigurationError, match="top_k"):
        RerankitRanker("local/bm25").run(QUERY, documents, top_k=0)
    with pytest.raises(ConfigurationError, match="top_n"):
        RerankitRanker("local/bm25", top_k=3, top_n=4)


def test_an_env_var_secret_round_trips_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VARIABLE, API_KEY)
    ranker = RerankitRanker(
        "cohere/rerank-v3.5", top_k=4, api_key=Secret.from_env_var(KEY_VARIABLE)
    )

    data = ranker.to_dict()
    assert data["init_parameters"]["api_key"] == {
        "type": "env_var",
        "env_vars": [KEY_VARIABLE],
        "strict": True,
    }
    assert API_KEY not in str(data)
    again = RerankitRanker.from_dict(data)
    assert again.api_key is not None
    assert again.api_key.resolve_value() == API_KEY
    assert (again.model, again.top_k) == ("cohere/rerank-v3.5", 4)

    yaml = pipeline([], ranker).dumps()
    assert KEY_VARIABLE in yaml
    assert API_KEY not in yaml
    trusted = ["rerankit.integrations.haystack"]  # Haystack 3.4 loads trusted modules only
    loaded = Pipeline.loads(yaml, allowed_modules=trusted).get_component("ranker")
    assert isinstance(loaded, RerankitRanker)
    assert loaded.api_key == ranker.api_key


def test_a_token_secret_or_a_client_is_never_serialised() -> None:
    ranker = RerankitRanker("cohere/rerank-v3.5", api_key=Secret.from_token(API_KEY))

    with pytest.raises(ValueError, match="token"):
        ranker.to_dict()
    with pytest.raises(ValueError, match="token"):
        pipeline([], ranker).dumps()
    with pytest.raises(SerializationError, match="client="):
        RerankitRanker("local/bm25", client=rerankit.AsyncClient()).to_dict()
    with pytest.raises(ConfigurationError, match="Secret"):
        RerankitRanker("cohere/rerank-v3.5", api_key=API_KEY)  # type: ignore[arg-type]
    assert RerankitRanker("local/bm25").to_dict()["init_parameters"]["api_key"] is None
