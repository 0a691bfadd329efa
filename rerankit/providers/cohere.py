"""Cohere Rerank, v2 by default and v1 when asked for (``api_version``, base URL or chunking)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._types import RerankRequest, RerankResponse, RerankResult, Usage
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext

__all__ = ["AzureAIProvider", "CohereProvider", "CohereRerankResponse", "cohere_usage"]

_PARAMETERS = frozenset({"max_tokens_per_doc", "max_chunks_per_doc"})
_DEFAULT = ModelCapabilities(
    max_documents=10_000,
    max_tokens_per_doc=4_096,
    max_query_tokens=2_048,
    score_kind="probability",
    parameters=_PARAMETERS,
    structured_documents=True,
)
_MODELS: dict[str, ModelCapabilities] = {
    "rerank-v4.0-pro": msgspec.structs.replace(_DEFAULT, max_tokens_per_doc=32_768),
    "rerank-v4.0-fast": msgspec.structs.replace(_DEFAULT, max_tokens_per_doc=32_768),
    "rerank-v3.5": _DEFAULT,
    "rerank-english-v3.0": _DEFAULT,
    "rerank-multilingual-v3.0": _DEFAULT,
    "rerank-english-v2.0": msgspec.structs.replace(_DEFAULT, max_tokens_per_doc=512),
    "rerank-multilingual-v2.0": msgspec.structs.replace(_DEFAULT, max_tokens_per_doc=512),
}


class _BilledUnits(msgspec.Struct):
    search_units: float | None = None


class _Tokens(msgspec.Struct):
    input_tokens: float | None = None


class _ApiVersion(msgspec.Struct):
    version: str | None = None


class _Meta(msgspec.Struct):
    api_version: _ApiVersion | None = None
    billed_units: _BilledUnits | None = None
    tokens: _Tokens | None = None
    warnings: list[str] | None = None


class CohereRerankResponse(msgspec.Struct):
    """The Cohere-shaped rerank answer (v1 and v2), decoding only the fields rerankit reads."""

    results: list[RerankResult]
    id: str | None = None
    meta: _Meta | None = None


def cohere_usage(meta: _Meta | None) -> Usage:
    """``billed_units.search_units`` and ``tokens.input_tokens``, when reported."""
    if meta is None:
        return Usage()
    units = meta.billed_units.search_units if meta.billed_units else None
    tokens = meta.tokens.input_tokens if meta.tokens else None
    return Usage(
        search_units=None if units is None else int(units),
        input_tokens=None if tokens is None else int(tokens),
    )


class CohereProvider(Provider):
    """``cohere/<model>``: Cohere's rerank API."""

    name = "cohere"
    api_key_env: ClassVar[tuple[str, ...]] = ("COHERE_API_KEY", "CO_API_KEY")
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("COHERE_API_BASE",)
    default_api_base: ClassVar[str | None] = "https://api.cohere.com"
    options = frozenset({"api_version", "priority"})

    example_model = "cohere/rerank-v3.5"
    sources: ClassVar[tuple[str, ...]] = (
        "https://docs.cohere.com/docs/reranking-best-practices: 1 to 10,000 documents, query "
        "up to 2,048 tokens; rerank-v4.0 (pro and fast) has a 32,768-token context and splits "
        "longer documents into 32,764-token chunks, scoring a document by its best chunk",
        "https://docs.pinecone.io/models/cohere-rerank-4-fast: one unit is a query with up to "
        "100 documents, and documents longer than about 500 tokens are split into chunks that "
        "each count toward the 100 (rerankit reports Cohere's own billed_units.search_units)",
    )

    def capabilities(self, model: str) -> ModelCapabilities:
        return _MODELS.get(model, _DEFAULT)

    def model_table(self) -> Mapping[str, ModelCapabilities]:
        return _MODELS

    def native_parameters(self, request: RerankRequest, ctx: ProviderContext) -> frozenset[str]:
        version, _ = _endpoint(ctx.api_base or "", request, self.default_version)
        return frozenset({"max_chunks_per_doc" if version == "v1" else "max_tokens_per_doc"})

    default_version: ClassVar[str] = "v2"
    model_group_header: ClassVar[str | None] = None
    """The answer header naming the deployment's model group, kept in ``provider_meta``."""

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        base = ctx.api_base or self.default_api_base or ""
        version, url = _endpoint(base, request, self.default_version)
        body = self._v2_body(request, ctx) if version == "v2" else self._v1_body(request, ctx)
        response = await ctx.post(url, body)
        answer = ctx.decode(response.body, CohereRerankResponse)
        meta = answer.meta
        provider_meta: dict[str, Any] = {}
        if meta and meta.warnings:
            provider_meta["warnings"] = meta.warnings
        if self.model_group_header is not None:
            model_group = response.headers.get(self.model_group_header)
            if model_group:
                provider_meta["model_group"] = model_group
        return RerankResponse(
            results=answer.results,
            id=answer.id,
            usage=cohere_usage(meta),
            api_version=version,
            provider_meta=provider_meta,
        )

    @staticmethod
    def _v2_body(request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        if request.max_chunks_per_doc is not None:
            ctx.unsupported(
                "max_chunks_per_doc",
                instead="it exists only in API v1 (api_version='v1'); v2 takes max_tokens_per_doc",
            )
        body: dict[str, Any] = {
            "model": request.model,
            "query": request.query,
            "documents": request.documents,
        }
        if request.top_n is not None:
            body["top_n"] = request.top_n
        if request.max_tokens_per_doc is not None:
            body["max_tokens_per_doc"] = request.max_tokens_per_doc
        if "priority" in request.options:
            body["priority"] = request.options["priority"]
        return body

    @staticmethod
    def _v1_body(request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        if request.max_tokens_per_doc is not None:
            ctx.unsupported("max_tokens_per_doc", instead="it exists only in API v2")
        if "priority" in request.options:
            ctx.unsupported("priority", instead="it exists only in API v2")
        structured = request.source_documents is not None and request.rank_fields is not None
        body: dict[str, Any] = {
            "model": request.model,
            "query": request.query,
            "documents": request.source_documents if structured else request.documents,
            "return_documents": False,
        }
        if structured:
            body["rank_fields"] = request.rank_fields
        if request.top_n is not None:
            body["top_n"] = request.top_n
        if request.max_chunks_per_doc is not None:
            body["max_chunks_per_doc"] = request.max_chunks_per_doc
        return body


_endpoints: dict[tuple[str, str | None, bool, str], tuple[str, str]] = {}
"""``_endpoint`` answers by (base URL, api_version option, chunking, default version)."""


def _endpoint(base: str, request: RerankRequest, default: str) -> tuple[str, str]:
    """The API version and URL, from the ``api_version`` option, the base URL and the request."""
    explicit = request.options.get("api_version") if request.options else None
    if explicit is not None and explicit not in ("v1", "v2"):
        raise ConfigurationError(f"cohere api_version must be 'v1' or 'v2', got {explicit!r}")
    chunking = request.max_chunks_per_doc is not None and request.max_tokens_per_doc is None
    key = (base, explicit, chunking, default)
    found = _endpoints.get(key)
    if found is None:
        found = _find_endpoint(base, explicit, chunking, default)
        if len(_endpoints) >= 256:
            _endpoints.clear()
        _endpoints[key] = found
    return found


def _find_endpoint(
    base: str, explicit: str | None, chunking: bool, default: str
) -> tuple[str, str]:
    from_base = None
    for candidate in ("v1", "v2"):
        if base.endswith((f"/{candidate}/rerank", f"/{candidate}")):
            from_base = candidate
    if explicit and from_base and explicit != from_base:
        raise ConfigurationError(
            f"cohere api_version={explicit!r} contradicts the base URL {base!r}, "
            f"which names {from_base}"
        )
    version = explicit or from_base
    if version is None:
        version = "v1" if chunking else default
    if base.endswith("/rerank"):
        url = base
    elif from_base:
        url = f"{base}/rerank"
    else:
        url = f"{base}/{version}/rerank"
    return version, url


class AzureAIProvider(CohereProvider):
    """``azure_ai/<model>``: Cohere Rerank deployed on Azure AI Foundry (v1 unless asked for v2).

    The base URL is the deployment's endpoint; the ``azureml-model-group`` answer header is kept
    as ``provider_meta["model_group"]``.
    """

    name = "azure_ai"
    api_key_env = ("AZURE_AI_API_KEY",)
    api_base_env = ("AZURE_AI_API_BASE",)
    default_api_base = None
    api_base_required = True
    default_version = "v1"
    model_group_header = "azureml-model-group"
    example_model = "azure_ai/Cohere-rerank-v3.5"
