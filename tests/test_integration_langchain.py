"""The LangChain adapter inside LangChain's own retrievers and chains, over an in-memory
vector store, with ``local/bm25`` and with the fake Cohere server."""

from __future__ import annotations

import threading

import aiohttp
import anyio
import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.runnables import RunnableLambda
from langchain_core.vectorstores import InMemoryVectorStore

import rerankit
from rerankit import AuthenticationError, ConfigurationError, UnknownProviderError
from rerankit._sync._portal import call
from rerankit.integrations.langchain import RerankitRerank
from rerankit.testing import CohereFake, FakeServer

from .integrations_support import (
    API_KEY,
    METADATA,
    QUERY,
    TEXTS,
    ThreadLog,
    bm25_order,
    cohere_order,
    hooked_client,
    rendered,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def store() -> InMemoryVectorStore:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents(
        [Document(page_content=t, metadata=m) for t, m in zip(TEXTS, METADATA, strict=True)]
    )
    return store


def compression(store: InMemoryVectorStore, **options: object) -> ContextualCompressionRetriever:
    """Every stored document, reranked by a ``RerankitRerank(**options)``."""
    return ContextualCompressionRetriever(
        base_compressor=RerankitRerank(**options),  # type: ignore[arg-type]
        base_retriever=store.as_retriever(search_kwargs={"k": len(TEXTS)}),
    )


def positions(documents: list[Document]) -> list[int]:
    return [document.metadata["position"] for document in documents]


def test_bm25_in_a_contextual_compression_retriever(store: InMemoryVectorStore) -> None:
    found = compression(store, model="local/bm25", top_n=3).invoke(QUERY)

    assert positions(found) == bm25_order(QUERY, TEXTS)[:3]
    best = rerankit.rerank("local/bm25", QUERY, TEXTS, top_n=1).results[0]
    assert found[0].metadata["relevance_score"] == best.relevance_score
    assert found[0].metadata["title"] == METADATA[best.index]["title"]  # metadata kept
    assert found[0].page_content == TEXTS[best.index]


async def test_bm25_async_in_a_contextual_compression_retriever(
    store: InMemoryVectorStore,
) -> None:
    found = await compression(store, model="local/bm25", top_n=2).ainvoke(QUERY)

    assert positions(found) == bm25_order(QUERY, TEXTS)[:2]


async def test_async_path_awaits_the_shared_client_on_the_callers_loop(
    store: InMemoryVectorStore, cohere_server: FakeServer
) -> None:
    log = ThreadLog()
    async with hooked_client(cohere_server, log) as client:
        retriever = compression(store, model="cohere/rerank-v3.5", top_n=2, client=client)
        found = await retriever.ainvoke(QUERY)

    assert positions(found) == cohere_order(QUERY, TEXTS)[:2]
    assert log.threads == [threading.current_thread().name]  # no worker thread
    (sent,) = cohere_server.received
    body = sent.json()
    assert body["model"] == "rerank-v3.5"
    assert body["top_n"] == 2
    assert sorted(body["documents"]) == sorted(TEXTS)


def test_sync_path_runs_a_shared_async_client_on_rerankits_loop_thread(
    store: InMemoryVectorStore, cohere_server: FakeServer
) -> None:
    log = ThreadLog()
    client = hooked_client(cohere_server, log)
    found = compression(store, model="cohere/rerank-v3.5", top_n=2, client=client).invoke(QUERY)

    assert positions(found) == cohere_order(QUERY, TEXTS)[:2]
    assert log.threads == ["rerankit-loop"]
    call(client.aclose)  # closes the pool it opened on that loop


async def test_sync_path_refuses_an_async_client_holding_a_session(
    store: InMemoryVectorStore,
) -> None:
    async with aiohttp.ClientSession() as session:
        client = rerankit.AsyncClient(session=session)
        compressor = RerankitRerank(model="local/bm25", client=client)
        with pytest.raises(ConfigurationError, match="session="):
            compressor.compress_documents([Document(page_content="a text")], QUERY)
        ranked = await compressor.acompress_documents([Document(page_content="a text")], QUERY)
    assert len(ranked) == 1


def test_a_sync_client_is_accepted(store: InMemoryVectorStore, cohere_server: FakeServer) -> None:
    with rerankit.Client(
        providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}}
    ) as client:
        found = compression(store, model="cohere/rerank-v3.5", top_n=1, client=client).invoke(QUERY)
    assert positions(found) == cohere_order(QUERY, TEXTS)[:1]


def test_cohere_rerank_arguments_reach_the_provider(
    store: InMemoryVectorStore, cohere_server: FakeServer
) -> None:
    retriever = compression(
        store,
        model="rerank-v3.5",  # a bare Cohere name, as CohereRerank takes it
        top_n=3,
        cohere_api_key=API_KEY,
        base_url=cohere_server.url,
    )
    found = retriever.invoke(QUERY)

    assert positions(found) == cohere_order(QUERY, TEXTS)[:3]
    assert cohere_server.received[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_rank_fields_come_from_metadata(
    store: InMemoryVectorStore, cohere_server: FakeServer
) -> None:
    compressor = RerankitRerank(
        model="cohere/rerank-v3.5",
        top_n=None,
        rank_fields=["title", "text"],
        api_key=API_KEY,
        api_base=cohere_server.url,
        score_key="score",
    )
    documents = [Document(page_content=t, metadata=m) for t, m in zip(TEXTS, METADATA, strict=True)]
    ranked = compressor.compress_documents(documents, QUERY)

    assert cohere_server.received[0].json()["documents"] == [rendered(i) for i in range(len(TEXTS))]
    assert len(ranked) == len(TEXTS)
    assert all("score" in d.metadata and "relevance_score" not in d.metadata for d in ranked)


async def test_in_an_lcel_chain(store: InMemoryVectorStore) -> None:
    chain = compression(store, model="local/bm25", top_n=2) | RunnableLambda(
        lambda docs: [d.page_content for d in docs]
    )
    expected = [TEXTS[i] for i in bm25_order(QUERY, TEXTS)[:2]]

    assert chain.invoke(QUERY) == expected
    assert await chain.ainvoke(QUERY) == expected


async def test_empty_lists_make_no_call(cohere_server: FakeServer) -> None:
    compressor = RerankitRerank(
        model="cohere/rerank-v3.5", api_key=API_KEY, api_base=cohere_server.url
    )
    empty = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=empty.as_retriever()
    )

    assert list(compressor.compress_documents([], QUERY)) == []
    assert list(await compressor.acompress_documents([], QUERY)) == []
    assert retriever.invoke(QUERY) == []
    assert cohere_server.requests == 0


async def test_errors_are_rerankits_typed_errors_without_the_key(
    store: InMemoryVectorStore,
) -> None:
    wrong = "wrong-key-0123456789"
    with FakeServer(CohereFake(API_KEY)) as server:
        retriever = compression(
            store, model="cohere/rerank-v3.5", cohere_api_key=wrong, base_url=server.url
        )
        with pytest.raises(AuthenticationError) as caught:
            await retriever.ainvoke(QUERY)
    assert wrong not in str(caught.value)
    with pytest.raises(UnknownProviderError):
        compression(store, model="nope/model").invoke(QUERY)
    with pytest.raises(ConfigurationError, match="top_n"):
        RerankitRerank(model="local/bm25", top_n=0)


def test_the_key_is_never_dumped_or_shown() -> None:
    compressor = RerankitRerank(model="cohere/rerank-v3.5", cohere_api_key=API_KEY)

    assert API_KEY not in repr(compressor)
    assert API_KEY not in str(compressor.model_dump())
    assert API_KEY not in compressor.model_dump_json()
    assert compressor.api_key is not None
    assert compressor.api_key.get_secret_value() == API_KEY
    with pytest.raises(ConfigurationError, match="cohere_api_key"):
        RerankitRerank(model="cohere/rerank-v3.5", api_key="a-key-1", cohere_api_key="a-key-2")


async def test_one_shared_client_serves_both_paths_with_one_cache(
    store: InMemoryVectorStore, cohere_server: FakeServer
) -> None:
    log = ThreadLog()
    async with hooked_client(cohere_server, log, cache=rerankit.MemoryCache()) as client:
        retriever = compression(store, model="cohere/rerank-v3.5", top_n=2, client=client)
        first = await retriever.ainvoke(QUERY)
        again = await anyio.to_thread.run_sync(retriever.invoke, QUERY)  # the sync path

    assert positions(again) == positions(first) == cohere_order(QUERY, TEXTS)[:2]
    assert cohere_server.requests == 1  # the sync call was answered from the client's cache
    assert log.threads == [threading.current_thread().name]
