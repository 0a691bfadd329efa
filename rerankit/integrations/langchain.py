"""LangChain: ``RerankitRerank``, a document compressor over every rerankit model.

    from langchain_classic.retrievers import ContextualCompressionRetriever
    from rerankit.integrations.langchain import RerankitRerank

    retriever = ContextualCompressionRetriever(
        base_compressor=RerankitRerank(model="cohere/rerank-v3.5", top_n=3),
        base_retriever=vector_store.as_retriever(),
    )

It takes ``langchain-cohere``'s ``CohereRerank`` arguments (``model``, ``top_n``,
``cohere_api_key``, ``base_url``), so switching is an import and class-name change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankit._client import AsyncClient
from rerankit._sync._client import Client
from rerankit.integrations._common import (
    Ranking,
    Reranker,
    either,
    missing_framework,
    reranker_of,
)

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from pydantic import ConfigDict, Field, SecretStr
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_framework("langchain", "langchain-core", "langchain") from exc

__all__ = ["RerankitRerank"]


class RerankitRerank(BaseDocumentCompressor):
    """Reranks documents with any rerankit model; the score goes in ``metadata[score_key]``.

    Args:
        model: a rerankit model string (``"cohere/rerank-v3.5"``, ``"local/bm25"``, ...).
        top_n: how many documents to keep (``None``: all, reordered).
        client: a rerankit ``AsyncClient`` (or ``Client``) to share its connection pool,
            cache, fallbacks and rate limits; by default rerankit's default clients.
        rank_fields: rank on these metadata fields (``"text"`` is the page content) instead
            of the page content alone.
        max_tokens_per_doc: truncate (or chunk) each document to this many tokens.
        options: further ``rerank()`` keyword arguments: provider options, ``instruction``,
            ``fallbacks``, ``timeout``, ``max_retries``...
        api_key: the provider's API key (``cohere_api_key``: the same); by default rerankit
            looks it up (client settings, then the provider's environment variables).
        api_base: the provider's base URL (``base_url``: the same).
        score_key: the metadata key the relevance score is written to.
    """

    model: str
    top_n: int | None = 3
    client: AsyncClient | Client | None = Field(default=None, exclude=True)
    rank_fields: list[str] | None = None
    max_tokens_per_doc: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    api_key: SecretStr | None = Field(default=None, exclude=True)
    api_base: str | None = None
    score_key: str = "relevance_score"

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    def __init__(
        self,
        *,
        model: str,
        top_n: int | None = 3,
        client: AsyncClient | Client | None = None,
        rank_fields: list[str] | None = None,
        max_tokens_per_doc: int | None = None,
        options: dict[str, Any] | None = None,
        api_key: str | SecretStr | None = None,
        api_base: str | None = None,
        score_key: str = "relevance_score",
        cohere_api_key: str | SecretStr | None = None,
        base_url: str | None = None,
    ) -> None:
        key = either("api_key", _secret(api_key), "cohere_api_key", _secret(cohere_api_key))
        fields: dict[str, Any] = {
            "model": model,
            "top_n": top_n,
            "client": client,
            "rank_fields": rank_fields,
            "max_tokens_per_doc": max_tokens_per_doc,
            "options": options or {},
            "api_key": key,
            "api_base": either("api_base", api_base, "base_url", base_url),
            "score_key": score_key,
        }
        super().__init__(**fields)
        self._reranker()  # checks the arguments now rather than at the first call

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The documents reranked by relevance to ``query``, cut to ``top_n``."""
        if not documents:
            return []
        texts, metadata = _texts(documents)
        return self._scored(documents, self._reranker().rank(query, texts, metadata))

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """``compress_documents`` on the running event loop (rerankit's ``AsyncClient``)."""
        if not documents:
            return []
        texts, metadata = _texts(documents)
        return self._scored(documents, await self._reranker().arank(query, texts, metadata))

    def _reranker(self) -> Reranker:
        return reranker_of(self)

    def _scored(self, documents: Sequence[Document], ranking: Ranking) -> list[Document]:
        """Copies of the ranked documents, their score in ``metadata[score_key]``."""
        ranked = []
        for index, score in ranking:
            document = documents[index]
            metadata = {**document.metadata, self.score_key: score}
            ranked.append(
                Document(page_content=document.page_content, metadata=metadata, id=document.id)
            )
        return ranked


def _secret(value: str | SecretStr | None) -> SecretStr | None:
    return SecretStr(value) if isinstance(value, str) else value


def _texts(documents: Sequence[Document]) -> tuple[list[str], list[dict[str, Any]]]:
    return [d.page_content for d in documents], [d.metadata for d in documents]
