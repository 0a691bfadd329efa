"""Haystack: ``RerankitRanker``, a ranker component over every rerankit model.

    from haystack import Pipeline
    from rerankit.integrations.haystack import RerankitRanker

    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store))
    pipeline.add_component("ranker", RerankitRanker(model="cohere/rerank-v3.5", top_k=3))
    pipeline.connect("retriever.documents", "ranker.documents")

It takes cohere-haystack's ``CohereRanker`` arguments (``model``, ``top_k``, ``api_key`` as a
``Secret``, ``api_base_url``, ``meta_fields_to_embed``, ``meta_data_separator``,
``max_tokens_per_doc``), so switching is an import and class-name change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rerankit._client import AsyncClient
from rerankit._errors import ConfigurationError
from rerankit._input import check_positive_int
from rerankit._sync._client import Client
from rerankit.integrations._common import (
    Ranking,
    Reranker,
    check_client,
    either,
    missing_framework,
)

try:
    from haystack import Document, component, default_from_dict, default_to_dict
    from haystack.core.errors import SerializationError
    from haystack.utils import Secret, deserialize_secrets_inplace
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_framework("haystack", "haystack-ai", "haystack") from exc

__all__ = ["RerankitRanker"]

DEFAULT_MODEL = "rerank-v3.5"
"""``CohereRanker``'s default model, so that leaving ``model`` out calls the same one."""


@component
class RerankitRanker:
    """Ranks documents with any rerankit model; the score goes in ``Document.score``.

    Args:
        model: a rerankit model string (``"cohere/rerank-v3.5"``, ``"local/bm25"``, ...);
            the default is ``CohereRanker``'s (Cohere's ``rerank-v3.5``).
        top_k: how many documents to keep (default 10; ``run`` may override it).
        top_n: the same as ``top_k``, rerankit's name for it.
        api_key: a Haystack ``Secret`` with the provider's API key; by default rerankit looks
            it up (client settings, then the provider's environment variables). Only an
            environment-variable secret can be serialised.
        api_base_url: the provider's base URL (``api_base``: the same).
        meta_fields_to_embed: metadata fields whose values are ranked with the content, each
            followed by ``meta_data_separator``, as Haystack's own rankers do.
        meta_data_separator: what joins those values and the content.
        max_tokens_per_doc: truncate (or chunk) each document to this many tokens.
        rank_fields: send the content as ``"text"`` with these metadata fields, ranked as
            fields (by providers that take structured documents); ``"text"`` is the content.
        options: further ``rerank()`` keyword arguments: provider options, ``instruction``,
            ``fallbacks``, ``timeout``, ``max_retries``...
        client: a rerankit ``AsyncClient`` (or ``Client``) to share its connection pool,
            cache, fallbacks and rate limits; by default rerankit's default clients. A ranker
            with a client cannot be serialised (``to_dict`` raises).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        top_k: int | None = None,
        *,
        top_n: int | None = None,
        api_key: Secret | None = None,
        api_base_url: str | None = None,
        api_base: str | None = None,
        meta_fields_to_embed: list[str] | None = None,
        meta_data_separator: str = "\n",
        max_tokens_per_doc: int | None = None,
        rank_fields: list[str] | None = None,
        options: dict[str, Any] | None = None,
        client: AsyncClient | Client | None = None,
    ) -> None:
        if api_key is not None and not isinstance(api_key, Secret):
            raise ConfigurationError(
                "api_key must be a haystack Secret (Secret.from_env_var(...) or "
                f"Secret.from_token(...)), got {type(api_key).__name__}"
            )
        self.model = model
        top = either("top_k", top_k, "top_n", top_n)
        self.top_k = 10 if top is None else check_positive_int("top_k", top) or 10
        self.api_key = api_key
        self.api_base_url = either("api_base_url", api_base_url, "api_base", api_base)
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.meta_data_separator = meta_data_separator
        self.max_tokens_per_doc = max_tokens_per_doc
        self.rank_fields = rank_fields
        self.options = dict(options or {})
        self.client = check_client(client)
        self._reranker(self.top_k, None)  # checks the arguments now rather than at the first call

    def to_dict(self) -> dict[str, Any]:
        """The component's init parameters (the key only as the name of its environment
        variable: a token secret raises ``ValueError``, as Haystack's components do)."""
        if self.client is not None:
            raise SerializationError(
                "a RerankitRanker built with client= cannot be serialised (a client is not "
                "data): build it without client=, or set its client after from_dict"
            )
        return default_to_dict(
            self,
            model=self.model,
            top_k=self.top_k,
            api_key=None if self.api_key is None else self.api_key.to_dict(),
            api_base_url=self.api_base_url,
            meta_fields_to_embed=self.meta_fields_to_embed,
            meta_data_separator=self.meta_data_separator,
            max_tokens_per_doc=self.max_tokens_per_doc,
            rank_fields=self.rank_fields,
            options=self.options,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RerankitRanker:
        """A ranker from ``to_dict``'s output."""
        data = {**data, "init_parameters": dict(data.get("init_parameters", {}))}
        deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """The documents reranked by relevance to ``query``, at most ``top_k``.

        Args:
            query: the query.
            documents: the documents to rank.
            top_k: how many to keep (default: the component's ``top_k``).

        Returns:
            ``{"documents": [...]}``: copies of the documents, best first, with their score.
        """
        if not documents:
            return {"documents": []}
        reranker = self._reranker(top_k, self._key())
        return {"documents": _scored(documents, reranker.rank(query, *self._texts(documents)))}

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """``run`` on the running event loop (rerankit's ``AsyncClient``, no thread)."""
        if not documents:
            return {"documents": []}
        reranker = self._reranker(top_k, self._key())
        ranking = await reranker.arank(query, *self._texts(documents))
        return {"documents": _scored(documents, ranking)}

    def _reranker(self, top_k: int | None, api_key: str | None) -> Reranker:
        top = self.top_k if top_k is None else check_positive_int("top_k", top_k)
        return Reranker(
            model=self.model,
            top_n=top,
            client=self.client,
            rank_fields=self.rank_fields,
            max_tokens_per_doc=self.max_tokens_per_doc,
            options=self.options,
            api_key=api_key,
            api_base=self.api_base_url,
        )

    def _key(self) -> str | None:
        if self.api_key is None:
            return None
        value = self.api_key.resolve_value()
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"api_key resolved to a {type(value).__name__}, not a str")
        return value

    def _texts(self, documents: list[Document]) -> tuple[list[str], list[dict[str, Any]]]:
        """Each document's text (its ``meta_fields_to_embed`` values, then its content) and
        metadata."""
        fields, separator = self.meta_fields_to_embed, self.meta_data_separator
        texts = []
        for document in documents:
            values = [str(document.meta[key]) for key in fields if document.meta.get(key)]
            texts.append(separator.join([*values, document.content or ""]))
        return texts, [document.meta for document in documents]


def _scored(documents: list[Document], ranking: Ranking) -> list[Document]:
    return [dataclasses.replace(documents[index], score=score) for index, score in ranking]
