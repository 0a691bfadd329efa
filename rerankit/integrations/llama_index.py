"""LlamaIndex: ``RerankitRerank``, a node postprocessor over every rerankit model.

    from rerankit.integrations.llama_index import RerankitRerank

    query_engine = index.as_query_engine(
        similarity_top_k=10,
        node_postprocessors=[RerankitRerank(model="cohere/rerank-v3.5", top_n=3)],
    )

It takes ``llama-index-postprocessor-cohere-rerank``'s ``CohereRerank`` arguments (``model``,
``top_n``, ``api_key``, ``base_url``), so switching is an import and class-name change.
"""

from __future__ import annotations

from typing import Any

from rerankit._client import AsyncClient
from rerankit._errors import ConfigurationError
from rerankit._sync._client import Client
from rerankit.integrations._common import (
    Ranking,
    Reranker,
    either,
    missing_framework,
    reranker_of,
)

try:
    from llama_index.core.bridge.pydantic import Field, SecretStr
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_framework("llama_index", "llama-index-core", "llama-index") from exc

__all__ = ["RerankitRerank"]

DEFAULT_MODEL = "rerank-english-v3.0"
"""``CohereRerank``'s default model, so that leaving ``model`` out calls the same one."""

dispatcher = get_dispatcher(__name__)


class RerankitRerank(BaseNodePostprocessor):
    """Reranks nodes with any rerankit model; the score goes in ``NodeWithScore.score``.

    Args:
        model: a rerankit model string (``"cohere/rerank-v3.5"``, ``"local/bm25"``, ...);
            the default is ``CohereRerank``'s (Cohere's ``rerank-english-v3.0``).
        top_n: how many nodes to keep (``None``: all, reordered).
        client: a rerankit ``AsyncClient`` (or ``Client``) to share its connection pool,
            cache, fallbacks and rate limits; by default rerankit's default clients.
        rank_fields: rank on these metadata fields (``"text"`` is the node's content) instead
            of the node's text with its embedding metadata (what ``CohereRerank`` ranks).
        max_tokens_per_doc: truncate (or chunk) each node's text to this many tokens.
        options: further ``rerank()`` keyword arguments: provider options, ``instruction``,
            ``fallbacks``, ``timeout``, ``max_retries``...
        api_key: the provider's API key; by default rerankit looks it up (client settings,
            then the provider's environment variables).
        api_base: the provider's base URL (``base_url``: the same).
    """

    model: str = Field(default=DEFAULT_MODEL, description="The rerankit model string.")
    top_n: int | None = Field(default=2, description="How many nodes to keep.")
    client: AsyncClient | Client | None = Field(default=None, exclude=True)
    rank_fields: list[str] | None = None
    max_tokens_per_doc: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    api_key: SecretStr | None = Field(default=None, exclude=True)
    api_base: str | None = None

    def __init__(
        self,
        top_n: int | None = 2,
        model: str = DEFAULT_MODEL,
        api_key: str | SecretStr | None = None,
        *,
        client: AsyncClient | Client | None = None,
        rank_fields: list[str] | None = None,
        max_tokens_per_doc: int | None = None,
        options: dict[str, Any] | None = None,
        api_base: str | None = None,
        base_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        fields: dict[str, Any] = {
            "top_n": top_n,
            "model": model,
            "api_key": SecretStr(api_key) if isinstance(api_key, str) else api_key,
            "client": client,
            "rank_fields": rank_fields,
            "max_tokens_per_doc": max_tokens_per_doc,
            "options": options or {},
            "api_base": either("api_base", api_base, "base_url", base_url),
        }
        super().__init__(**fields, **kwargs)
        self._reranker()  # checks the arguments now rather than at the first call

    @classmethod
    def class_name(cls) -> str:
        return "RerankitRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _query(query_bundle)
        if not nodes:
            return []
        self._start(nodes, query_bundle)
        texts, metadata = self._texts(nodes)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            ranked = _scored(nodes, self._reranker().rank(query, texts, metadata))
            event.on_end(payload={EventPayload.NODES: ranked})
        dispatcher.event(ReRankEndEvent(nodes=ranked))
        return ranked

    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = _query(query_bundle)
        if not nodes:
            return []
        self._start(nodes, query_bundle)
        texts, metadata = self._texts(nodes)
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            ranked = _scored(nodes, await self._reranker().arank(query, texts, metadata))
            event.on_end(payload={EventPayload.NODES: ranked})
        dispatcher.event(ReRankEndEvent(nodes=ranked))
        return ranked

    def _reranker(self) -> Reranker:
        return reranker_of(self)

    def _texts(self, nodes: list[NodeWithScore]) -> tuple[list[str], list[dict[str, Any]]]:
        mode = MetadataMode.EMBED if self.rank_fields is None else MetadataMode.NONE
        return (
            [n.node.get_content(metadata_mode=mode) for n in nodes],
            [n.node.metadata for n in nodes],
        )

    def _start(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None) -> None:
        top_n = len(nodes) if self.top_n is None else self.top_n
        dispatcher.event(
            ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=top_n, model_name=self.model)
        )

    def _payload(self, nodes: list[NodeWithScore], query: str) -> dict[str, Any]:
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model,
            EventPayload.QUERY_STR: query,
            EventPayload.TOP_K: self.top_n,
        }


def _query(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise ConfigurationError(
            "query_bundle is missing: pass query_bundle= or query_str= to postprocess_nodes"
        )
    return query_bundle.query_str


def _scored(nodes: list[NodeWithScore], ranking: Ranking) -> list[NodeWithScore]:
    return [NodeWithScore(node=nodes[index].node, score=score) for index, score in ranking]
