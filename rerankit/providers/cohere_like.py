"""Hosted rerank APIs close to Cohere's: Voyage, Mixedbread, Pinecone, ZeroEntropy, Contextual.

Each is a ``RestProvider`` with its own ``RestVendor`` table; the hooks overridden below carry
only what the table cannot say (Pinecone's headers and single-field models, ZeroEntropy's byte
figures, Contextual's per-document metadata).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from rerankit._errors import ConfigurationError
from rerankit.providers._base import ModelCapabilities, ProviderContext
from rerankit.providers._rest import RestProvider, RestVendor

if TYPE_CHECKING:
    from rerankit._http import HTTPResponse
    from rerankit._types import RerankRequest
    from rerankit.providers._rest import Envelope

__all__ = [
    "ContextualProvider",
    "MixedbreadProvider",
    "PineconeProvider",
    "VoyageProvider",
    "ZeroEntropyProvider",
]

_replace = msgspec.structs.replace

# --- Voyage -----------------------------------------------------------------------------------

_VOYAGE = ModelCapabilities(max_documents=1_000)
_VOYAGE_2_5 = _replace(
    _VOYAGE, max_query_tokens=8_000, max_pair_tokens=32_000, max_request_tokens=600_000
)
_VOYAGE_2 = _replace(
    _VOYAGE, max_query_tokens=4_000, max_pair_tokens=16_000, max_request_tokens=600_000
)
_VOYAGE_2_LITE = _replace(
    _VOYAGE, max_query_tokens=2_000, max_pair_tokens=8_000, max_request_tokens=600_000
)


class VoyageProvider(RestProvider):
    """``voyage/<model>``: Voyage AI's rerank API (``POST /v1/rerank``).

    Documents are sent as strings (dicts are rendered); ``top_n`` goes on the wire as ``top_k``
    and ``return_documents`` is sent as ``false``. ``instruction`` is not a field: rerank-2.5
    follows instructions written into the query. Option ``truncation`` (default true) is passed
    through; with ``truncation=False`` over-long inputs are request errors. Usage:
    ``usage.total_tokens``.
    """

    name = "voyage"
    api_key_env: ClassVar[tuple[str, ...]] = ("VOYAGE_API_KEY", "VOYAGE_AI_API_KEY")
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("VOYAGE_API_BASE",)
    example_model = "voyage/rerank-2.5"
    sources: ClassVar[tuple[str, ...]] = (
        "https://docs.voyageai.com/docs/reranker: rerank-2.5 and rerank-2.5-lite, 32,000-token "
        "context, instruction-following",
        "https://www.mongodb.com/company/blog/product-release-announcements/rerank-2-5-and-"
        "rerank-2-5-lite-instruction-following-rerankers: instructions steer the scores, given "
        "alongside the query (no separate request field is documented)",
    )
    vendor = RestVendor(
        route="/v1/rerank",
        default_base="https://api.voyageai.com",
        top_n_field="top_k",
        extras=("truncation",),
        results_fields=("data",),
        default=_VOYAGE,
        models={
            "rerank-2.5": _VOYAGE_2_5,
            "rerank-2.5-lite": _VOYAGE_2_5,
            "rerank-2": _VOYAGE_2,
            "rerank-2-lite": _VOYAGE_2_LITE,
            "rerank-1": _replace(_VOYAGE_2_LITE, max_request_tokens=100_000),
            "rerank-lite-1": _replace(
                _VOYAGE, max_query_tokens=1_000, max_pair_tokens=4_000, max_request_tokens=300_000
            ),
        },
    )


# --- Mixedbread -------------------------------------------------------------------------------


class MixedbreadProvider(RestProvider):
    """``mixedbread/<model>``: Mixedbread's reranking API (``POST /v1/reranking``).

    Documents go as ``input``: strings, or the caller's dicts as they are when ``rank_fields``
    is given (sent as Mixedbread's ``rank_fields``). ``top_n`` goes as ``top_k``;
    ``return_input`` is sent as ``false``. Option ``rewrite_query`` is passed through. Usage:
    ``usage.total_tokens`` and ``usage.prompt_tokens`` (as input tokens).
    """

    name = "mixedbread"
    api_key_env: ClassVar[tuple[str, ...]] = ("MXBAI_API_KEY", "MIXEDBREAD_API_KEY")
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("MIXEDBREAD_API_BASE",)
    example_model = "mixedbread/mixedbread-ai/mxbai-rerank-large-v2"
    vendor = RestVendor(
        route="/v1/reranking",
        default_base="https://api.mixedbread.com",
        documents_field="input",
        documents="native",
        rank_fields_field="rank_fields",
        top_n_field="top_k",
        return_documents_field="return_input",
        extras=("rewrite_query",),
        results_fields=("data",),
        score_fields=("score",),
        default=ModelCapabilities(max_documents=1_000, structured_documents=True),
    )


# --- Pinecone ---------------------------------------------------------------------------------

_PINECONE = ModelCapabilities(score_kind="probability", structured_documents=True)
_SINGLE_RANK_FIELD = frozenset({"bge-reranker-v2-m3", "pinecone-rerank-v0"})
"""Pinecone models that rank on one field only; more ``rank_fields`` are rendered instead."""


class PineconeProvider(RestProvider):
    """``pinecone/<model>``: Pinecone Inference rerank (``POST /rerank``).

    Authenticates with ``Api-Key`` and a pinned ``X-Pinecone-Api-Version`` header (no bearer
    token). Documents are objects: strings are sent as ``{"text": s}``, the caller's dicts as
    they are with ``rank_fields`` (for models that rank on one field only, several
    ``rank_fields`` are rendered into ``text`` instead). ``return_documents`` is sent as
    ``false``. ``max_chunks_per_doc`` goes into ``parameters`` for cohere-rerank-3.5. Option
    ``parameters`` (e.g. ``{"truncate": "END"}``) is passed through. Usage: ``rerank_units`` as
    search units.
    """

    name = "pinecone"
    api_key_env: ClassVar[tuple[str, ...]] = ("PINECONE_API_KEY",)
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("PINECONE_API_BASE",)
    example_model = "pinecone/bge-reranker-v2-m3"
    api_version: ClassVar[str] = "2025-04"
    """The ``X-Pinecone-Api-Version`` every request is pinned to."""
    vendor = RestVendor(
        route="/rerank",
        default_base="https://api.pinecone.io",
        documents="objects",
        rank_fields_field="rank_fields",
        extras=("parameters",),
        results_fields=("data",),
        score_fields=("score",),
        default=_PINECONE,
        models={
            "bge-reranker-v2-m3": _replace(_PINECONE, max_documents=100, max_pair_tokens=1_024),
            "pinecone-rerank-v0": _replace(_PINECONE, max_documents=100, max_pair_tokens=512),
            "cohere-rerank-3.5": _replace(
                _PINECONE,
                max_documents=200,
                max_pair_tokens=40_000,
                parameters=frozenset({"max_chunks_per_doc"}),
            ),
        },
    )

    def headers(self, ctx: ProviderContext) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Pinecone-Api-Version": self.api_version}
        if ctx.api_key:
            headers["Api-Key"] = ctx.api_key
        return headers

    @staticmethod
    def _rendered(request: RerankRequest) -> bool:
        """Whether a model that ranks on one field got several ``rank_fields``."""
        fields = request.rank_fields
        return fields is not None and len(fields) > 1 and request.model in _SINGLE_RANK_FIELD

    def documents(self, request: RerankRequest) -> list[Any]:
        if self._rendered(request):
            return [{"text": text} for text in request.documents]
        return super().documents(request)

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        body = super().body(request, ctx)
        if self._rendered(request):
            body.pop("rank_fields", None)
        if request.max_chunks_per_doc is not None:
            parameters = body.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                raise ConfigurationError(
                    f"pinecone option parameters must be a dict, got {parameters!r}"
                )
            body["parameters"] = {
                **(parameters or {}),
                "max_chunks_per_doc": request.max_chunks_per_doc,
            }
        return body


# --- ZeroEntropy ------------------------------------------------------------------------------


class _ZeroEntropyFigures(msgspec.Struct):
    total_bytes: Any = None
    actual_latency_mode: Any = None


class ZeroEntropyProvider(RestProvider):
    """``zeroentropy/<model>``: ZeroEntropy's rerank API (``POST /v1/models/rerank``).

    Documents are sent as strings (dicts are rendered); there is no document flag, so documents
    are always back-filled by rerankit. Option ``latency`` (``"fast"`` or ``"slow"``) is passed
    through. Usage: ``total_tokens``; ``total_bytes`` (what rate limits count) and
    ``actual_latency_mode`` (``"slow"`` when the request was throttled) are kept in
    ``provider_meta``. A request may carry at most 5,000,000 bytes, counted as 150 plus the
    UTF-8 bytes of the query and of the document, for each document. zerank-2 follows
    instructions written into the query text (there is no instruction field).
    """

    name = "zeroentropy"
    api_key_env: ClassVar[tuple[str, ...]] = ("ZEROENTROPY_API_KEY", "ZERO_ENTROPY_API_KEY")
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("ZEROENTROPY_API_BASE",)
    example_model = "zeroentropy/zerank-2"
    sources: ClassVar[tuple[str, ...]] = (
        "https://www.zeroentropy.dev/articles/prompting-best-practices-for-instruction-"
        "following-rerankers: zerank-2 follows instructions appended to the query text",
    )
    default_requests_per_minute = 1_000.0
    vendor = RestVendor(
        route="/v1/models/rerank",
        default_base="https://api.zeroentropy.dev",
        return_documents_field=None,
        extras=("latency",),
        default=ModelCapabilities(
            max_request_bytes=5_000_000, request_byte_overhead=150, score_kind="probability"
        ),
    )

    def provider_meta(self, answer: HTTPResponse, envelope: Envelope) -> dict[str, Any]:
        try:
            figures = msgspec.json.decode(answer.body, type=_ZeroEntropyFigures)
        except msgspec.DecodeError:
            return {}
        meta: dict[str, Any] = {}
        if figures.total_bytes is not None:
            meta["total_bytes"] = figures.total_bytes
        if figures.actual_latency_mode is not None:
            meta["actual_latency_mode"] = figures.actual_latency_mode
        return meta


# --- Contextual AI ----------------------------------------------------------------------------


class ContextualProvider(RestProvider):
    """``contextual/<model>``: Contextual AI's instruction-following reranker (``POST /v1/rerank``).

    Documents are sent as strings (dicts are rendered); ``instruction`` goes on the wire (e.g.
    "prefer recent internal documents"). There is no document flag: documents are back-filled
    by rerankit. Option ``metadata``, a list of strings aligned one-to-one with the documents,
    is passed through. No usage is reported.
    """

    name = "contextual"
    api_key_env: ClassVar[tuple[str, ...]] = ("CONTEXTUAL_API_KEY",)
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("CONTEXTUAL_API_BASE",)
    example_model = "contextual/ctxl-rerank-v2-instruct-multilingual"
    per_document_options = frozenset({"metadata"})
    vendor = RestVendor(
        route="/v1/rerank",
        default_base="https://api.contextual.ai",
        return_documents_field=None,
        wire_parameters={"instruction": "instruction"},
        extras=("metadata",),
        default=ModelCapabilities(
            max_pair_tokens=8_000,
            max_request_tokens=400_000,
            parameters=frozenset({"instruction"}),
        ),
    )

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        metadata = request.options.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, list)
            or len(metadata) != len(request.documents)
            or not all(isinstance(item, str) for item in metadata)
        ):
            raise ConfigurationError(
                "contextual option metadata must be a list of strings, one per document "
                f"({len(request.documents)} documents)"
            )
        return super().body(request, ctx)
