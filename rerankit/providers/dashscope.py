"""Alibaba Model Studio (DashScope) rerank: the compatible protocol and the native one.

The compatible protocol (``/compatible-api/v1/reranks``) is the Cohere shape, so it is the
``RestVendor`` table. The native protocol (``/api/v1/services/rerank/text-rerank/text-rerank``)
nests the request under ``input``/``parameters`` and the results under ``output``; it is a small
override of the ``url``, ``body`` and ``parse`` hooks. Which protocol serves a model is per-model
data, with the ``protocol`` option as an override.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec

from rerankit._errors import APIStatusError, ConfigurationError, ResponseValidationError
from rerankit._images import ImageInput, image_of
from rerankit._types import RerankRequest, RerankResponse
from rerankit.providers._base import ModelCapabilities, ProviderContext
from rerankit.providers._rest import (
    Envelope,
    RestProvider,
    RestVendor,
    ResultItem,
    UsageFields,
    usage_from,
)

if TYPE_CHECKING:
    from rerankit._http import HTTPResponse

__all__ = ["DashScopeProvider", "QwenCloudProvider", "dashscope_url"]

Protocol = Literal["compatible", "native"]

COMPATIBLE_ROUTE = "/compatible-api/v1/reranks"
NATIVE_ROUTE = "/api/v1/services/rerank/text-rerank/text-rerank"
_HOST_SUFFIXES = (
    COMPATIBLE_ROUTE,
    NATIVE_ROUTE,
    "/compatible-api/v1",
    "/compatible-mode/v1",
    "/api/v1",
)
"""Known DashScope routes and API roots; what precedes them is the host."""

_INSTRUCTION = frozenset({"instruction"})
_MODELS: dict[str, ModelCapabilities] = {
    "qwen3-rerank": ModelCapabilities(
        max_documents=500,
        max_tokens_per_doc=4_000,
        max_query_tokens=4_000,
        max_request_tokens=120_000,
        parameters=_INSTRUCTION,
    ),
    "gte-rerank-v2": ModelCapabilities(
        max_documents=500,
        max_tokens_per_doc=4_000,
        max_query_tokens=4_000,
        max_request_tokens=30_000,
    ),
    "qwen3-vl-rerank": ModelCapabilities(
        max_documents=100,
        max_tokens_per_doc=8_000,
        max_query_tokens=8_000,
        max_request_tokens=120_000,
        parameters=_INSTRUCTION,
        images=ImageInput(data=False, with_text=False, max_per_request=40),
    ),
    "qwen3.7-text-rerank": ModelCapabilities(parameters=_INSTRUCTION),
}
NATIVE_MODELS = frozenset({"gte-rerank-v2", "qwen3-vl-rerank", "qwen3.7-text-rerank"})
"""Models served on the native protocol; any other model uses the compatible one."""
_OBJECT_DOCUMENTS = frozenset({"qwen3-vl-rerank"})
"""Multimodal models whose native documents are objects (``{"text": ...}``), not strings."""


def dashscope_url(base: str, protocol: Protocol) -> str:
    """The endpoint of ``protocol`` for ``base``.

    A base ending in a known DashScope route or API root (``/compatible-api/v1/reranks``, the
    native route, ``/compatible-api/v1``, a chat-style ``/compatible-mode/v1``, ``/api/v1``)
    names the host, which gets the route of ``protocol``. Any other base ending in ``/reranks``
    or ``/rerank`` (a gateway) is used as it is; a bare host gets the route of ``protocol``.
    """
    base = base.rstrip("/")
    host = base
    for suffix in _HOST_SUFFIXES:
        if base.endswith(suffix):
            host = base[: -len(suffix)]
            break
    else:
        if base.endswith(("/reranks", "/rerank")):
            return base
    return host + (COMPATIBLE_ROUTE if protocol == "compatible" else NATIVE_ROUTE)


class _Output(msgspec.Struct):
    results: list[ResultItem] | None = None


class _Answer(msgspec.Struct):
    """Both protocols' answers and DashScope's error body, decoding only what rerankit reads."""

    id: str | None = None
    request_id: str | None = None
    results: list[ResultItem] | None = None
    output: _Output | None = None
    usage: UsageFields | None = None
    code: str | None = None
    message: str | None = None


class _ErrorBody(msgspec.Struct):
    request_id: str | None = None


class DashScopeProvider(RestProvider):
    """Alibaba Model Studio (DashScope) rerank, China region (``https://dashscope.aliyuncs.com``).

    Two protocols: *compatible* (``/compatible-api/v1/reranks``, the Cohere shape; used by
    ``qwen3-rerank`` and unlisted models) and *native*
    (``/api/v1/services/rerank/text-rerank/text-rerank``; used by ``gte-rerank-v2``,
    ``qwen3-vl-rerank``, whose documents go as ``{"text": ...}`` objects, and
    ``qwen3.7-text-rerank``). ``qwen3-vl-rerank`` takes image documents as http(s) URLs
    (``{"image": url}``, no text beside it), at most 40 images a request.
    The option ``protocol="compatible" | "native"`` overrides the per-model choice.
    ``instruction`` exists only on the native protocol (as ``parameters.instruct``), so a call
    with an instruction and no explicit ``protocol`` uses native; with ``protocol="compatible"``
    it is unsupported.

    The base names the host: a base ending in ``/compatible-api/v1/reranks``, the native route,
    ``/compatible-api/v1``, a chat-style ``/compatible-mode/v1`` or ``/api/v1`` gets the route of
    the protocol in use; any other base ending in ``/reranks`` or ``/rerank`` is used as it is.
    ``DASHSCOPE_API_BASE`` (the chat base) is read after ``DASHSCOPE_API_BASE_RERANK``. API keys
    belong to one region. Usage: ``total_tokens``. The request id (``id`` or ``request_id``) is
    kept on the response and on errors; ``provider_meta["protocol"]`` names the protocol used.
    Limits count request tokens as ``query_tokens * n_docs + sum(doc_tokens)``. Score kind is
    ``unknown``.
    """

    name = "dashscope"
    api_key_env: ClassVar[tuple[str, ...]] = ("DASHSCOPE_API_KEY",)
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("DASHSCOPE_API_BASE_RERANK", "DASHSCOPE_API_BASE")
    options = frozenset({"protocol"})
    example_model: ClassVar[str] = "dashscope/qwen3-rerank"
    sources: ClassVar[tuple[str, ...]] = (
        "https://www.alibabacloud.com/help/en/model-studio/rerank: qwen3-rerank over the "
        "OpenAI-compatible route {base}/compatible-api/v1/reranks with {model, query, "
        "documents}",
        "https://www.alibabacloud.com/help/en/model-studio/text-rerank-api: qwen3-vl-rerank "
        "(Beijing) takes at most 100 text, 40 image or 4 video documents, 8,000 tokens per "
        "item, 120,000 per request; documents are {text}, {image: URL} or {video: URL} objects "
        "on the native route",
    )
    vendor = RestVendor(
        route=COMPATIBLE_ROUTE,
        default_base="https://dashscope.aliyuncs.com",
        default=ModelCapabilities(parameters=_INSTRUCTION),
        models=_MODELS,
    )

    def protocol(self, request: RerankRequest) -> Protocol:
        """The protocol for this call: the ``protocol`` option, else the model's, else by need."""
        explicit = request.options.get("protocol")
        if explicit is not None:
            if explicit not in ("compatible", "native"):
                raise ConfigurationError(
                    f"{self.name} protocol must be 'compatible' or 'native', got {explicit!r}"
                )
            return explicit  # type: ignore[no-any-return]
        if request.model in NATIVE_MODELS or request.instruction is not None:
            return "native"
        return "compatible"

    def url(self, request: RerankRequest, ctx: ProviderContext) -> str:
        return dashscope_url(ctx.api_base or self.default_api_base or "", self.protocol(request))

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        protocol = self.protocol(request)
        body = super().body(request, ctx)
        if protocol == "compatible":
            if request.instruction is not None:
                ctx.unsupported(
                    "instruction",
                    instead="only the native protocol takes it (protocol='native')",
                )
            return body
        documents: list[Any] = body["documents"]
        if request.model in _OBJECT_DOCUMENTS:
            documents = [_object_document(text) for text in documents]
        parameters: dict[str, Any] = {"return_documents": False}
        if "top_n" in body:
            parameters["top_n"] = body["top_n"]
        if request.instruction is not None:
            parameters["instruct"] = request.instruction
        return {
            "model": body["model"],
            "input": {"query": body["query"], "documents": documents},
            "parameters": parameters,
        }

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        try:
            return await super().rerank(request, ctx)
        except APIStatusError as exc:
            if exc.request_id is None and exc.body:
                exc.request_id = _request_id_of(exc.body)
            raise

    def parse(
        self, answer: HTTPResponse, request: RerankRequest, ctx: ProviderContext
    ) -> RerankResponse:
        decoded = ctx.decode(answer.body, _Answer)
        native = self.protocol(request) == "native"
        results = decoded.output.results if native and decoded.output else decoded.results
        request_id = decoded.request_id or decoded.id
        envelope = Envelope(results=results, usage=decoded.usage, request_id=request_id)
        if results is None and decoded.code:
            raise ResponseValidationError(
                f"{ctx.provider} answered with error {decoded.code!r} and no results "
                f"for model {ctx.model!r}: {decoded.message or ''}".rstrip(": "),
                provider=ctx.provider,
                model=ctx.model,
                request_id=request_id,
            )
        items = self._items(envelope, ctx)
        return RerankResponse(
            results=self._results(items, ctx),
            id=request_id,
            usage=usage_from(envelope),
            provider_meta={"protocol": "native" if native else "compatible"},
        )


def _object_document(text: str) -> dict[str, str]:
    """A multimodal model's document: ``{text}``, or ``{image}`` with the image's URL."""
    image = image_of(text)
    if image is None or image.url is None:
        return {"text": text}
    return {"image": image.url}


def _request_id_of(body: str) -> str | None:
    try:
        return msgspec.json.decode(body, type=_ErrorBody).request_id
    except (msgspec.DecodeError, UnicodeError):
        return None


class QwenCloudProvider(DashScopeProvider):
    """Alibaba Model Studio (DashScope) rerank, international region (``dashscope-intl``).

    Everything is as ``dashscope``, at ``https://dashscope-intl.aliyuncs.com``: the same two
    protocols, per-model choice, ``protocol`` option and base rules. Keys: ``QWENCLOUD_API_KEY``,
    then ``DASHSCOPE_API_KEY`` (it must be an international-region key); base:
    ``QWENCLOUD_API_BASE_RERANK``. The Singapore region lists ``qwen3-rerank``.
    """

    name = "qwencloud"
    api_key_env = ("QWENCLOUD_API_KEY", "DASHSCOPE_API_KEY")
    api_base_env = ("QWENCLOUD_API_BASE_RERANK",)
    default_api_base = "https://dashscope-intl.aliyuncs.com"
    example_model = "qwencloud/qwen3-rerank"
