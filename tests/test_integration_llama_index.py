"""The LlamaIndex adapter as a query engine's node postprocessor, over a ``VectorStoreIndex``
with a mock embedding and a mock LLM, with ``local/bm25`` and with the fake Cohere server.

LlamaIndex takes a second to import: this module imports it once."""

from __future__ import annotations

import threading

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import BaseQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

import rerankit
from rerankit import AuthenticationError, ConfigurationError, UnknownProviderError
from rerankit.integrations.llama_index import RerankitRerank
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


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    documents = [Document(text=t, metadata=m) for t, m in zip(TEXTS, METADATA, strict=True)]
    return VectorStoreIndex.from_documents(documents, embed_model=MockEmbedding(embed_dim=8))


def engine(index: VectorStoreIndex, reranker: RerankitRerank) -> BaseQueryEngine:
    return index.as_query_engine(
        llm=MockLLM(), similarity_top_k=len(TEXTS), node_postprocessors=[reranker]
    )


def positions(nodes: list[NodeWithScore]) -> list[int]:
    return [node.node.metadata["position"] for node in nodes]


def embed_texts() -> list[str]:
    """What ``CohereRerank`` ranks: each node's text with its embedding metadata."""
    nodes = [TextNode(text=t, metadata=m) for t, m in zip(TEXTS, METADATA, strict=True)]
    return [node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]


def test_bm25_in_a_query_engine(index: VectorStoreIndex) -> None:
    response = engine(index, RerankitRerank(model="local/bm25", top_n=3)).query(QUERY)

    direct = rerankit.rerank("local/bm25", QUERY, embed_texts(), top_n=3).results
    assert positions(response.source_nodes) == [r.index for r in direct]
    assert [n.score for n in response.source_nodes] == [r.relevance_score for r in direct]


async def test_bm25_async_in_a_query_engine(index: VectorStoreIndex) -> None:
    response = await engine(index, RerankitRerank(model="local/bm25", top_n=2)).aquery(QUERY)

    direct = rerankit.rerank("local/bm25", QUERY, embed_texts(), top_n=2).results
    assert positions(response.source_nodes) == [r.index for r in direct]


async def test_async_path_awaits_the_shared_client_on_the_callers_loop(
    index: VectorStoreIndex, cohere_server: FakeServer
) -> None:
    log = ThreadLog()
    async with hooked_client(cohere_server, log) as client:
        reranker = RerankitRerank(model="cohere/rerank-v3.5", top_n=2, client=client)
        response = await engine(index, reranker).aquery(QUERY)

    assert positions(response.source_nodes) == cohere_order(QUERY, embed_texts())[:2]
    assert log.threads == [threading.current_thread().name]  # no worker thread
    body = cohere_server.received[0].json()
    assert (body["model"], body["top_n"]) == ("rerank-v3.5", 2)
    assert sorted(body["documents"]) == sorted(embed_texts())


def test_sync_path_with_a_shared_client(index: VectorStoreIndex, cohere_server: FakeServer) -> None:
    log = ThreadLog()
    with rerankit.Client(
        providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}}, hooks=[log]
    ) as client:
        reranker = RerankitRerank(model="cohere/rerank-v3.5", top_n=1, client=client)
        response = engine(index, reranker).query(QUERY)

    assert positions(response.source_nodes) == cohere_order(QUERY, embed_texts())[:1]
    assert log.threads == ["rerankit-loop"]


def test_cohere_rerank_arguments_reach_the_provider(
    index: VectorStoreIndex, cohere_server: FakeServer
) -> None:
    reranker = RerankitRerank(top_n=3, api_key=API_KEY, base_url=cohere_server.url)
    response = engine(index, reranker).query(QUERY)

    assert reranker.model == "rerank-english-v3.0"  # CohereRerank's default model
    assert positions(response.source_nodes) == cohere_order(QUERY, embed_texts())[:3]
    sent = cohere_server.received[0]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.json()["model"] == "rerank-english-v3.0"


async def test_rank_fields_come_from_metadata(
    index: VectorStoreIndex, cohere_server: FakeServer
) -> None:
    reranker = RerankitRerank(
        model="cohere/rerank-v3.5",
        top_n=None,
        rank_fields=["title", "text"],
        api_key=API_KEY,
        api_base=cohere_server.url,
    )
    nodes = [
        NodeWithScore(node=TextNode(text=t, metadata=m), score=0.5)
        for t, m in zip(TEXTS, METADATA, strict=True)
    ]
    ranked = await reranker.apostprocess_nodes(nodes, query_str=QUERY)

    assert cohere_server.received[0].json()["documents"] == [rendered(i) for i in range(len(TEXTS))]
    assert sorted(positions(ranked)) == list(range(len(TEXTS)))
    assert all(node.score is not None and node.score != 0.5 for node in ranked)


async def test_empty_lists_make_no_call(cohere_server: FakeServer) -> None:
    reranker = RerankitRerank(
        model="cohere/rerank-v3.5", api_key=API_KEY, api_base=cohere_server.url
    )

    assert reranker.postprocess_nodes([], query_str=QUERY) == []
    assert await reranker.apostprocess_nodes([], query_str=QUERY) == []
    assert cohere_server.requests == 0
    with pytest.raises(ConfigurationError, match="query_bundle"):
        reranker.postprocess_nodes([])


async def test_errors_are_rerankits_typed_errors_without_the_key(index: VectorStoreIndex) -> None:
    wrong = "wrong-key-0123456789"
    with FakeServer(CohereFake(API_KEY)) as server:
        reranker = RerankitRerank(model="cohere/rerank-v3.5", api_key=wrong, base_url=server.url)
        with pytest.raises(AuthenticationError) as caught:
            await engine(index, reranker).aquery(QUERY)
    assert wrong not in str(caught.value)
    with pytest.raises(UnknownProviderError):
        engine(index, RerankitRerank(model="nope/model")).query(QUERY)
    with pytest.raises(ConfigurationError, match="max_tokens_per_doc"):
        RerankitRerank(model="local/bm25", max_tokens_per_doc=0)


def test_serialises_without_the_key() -> None:
    reranker = RerankitRerank(model="local/bm25", top_n=4, api_key=API_KEY)

    data = reranker.to_dict()
    assert API_KEY not in repr(reranker)
    assert API_KEY not in str(data)
    assert API_KEY not in reranker.to_json()
    assert data["class_name"] == "RerankitRerank"
    again = RerankitRerank.from_dict(data)
    assert (again.model, again.top_n, again.api_key) == ("local/bm25", 4, None)
