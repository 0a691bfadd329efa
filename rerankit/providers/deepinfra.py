"""DeepInfra's inference API: the model in the URL path, scores answered in input order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from rerankit._errors import ResponseValidationError
from rerankit._types import RerankResponse, RerankResult, Usage
from rerankit.providers._base import ModelCapabilities, ProviderContext
from rerankit.providers._rest import RestProvider, RestVendor

if TYPE_CHECKING:
    from rerankit._http import HTTPResponse
    from rerankit._types import RerankRequest

__all__ = ["DeepInfraProvider"]

_INSTRUCTED = ModelCapabilities(max_pair_tokens=32_768, parameters=frozenset({"instruction"}))
_INSTRUCTION_MODELS = ("Qwen3-Reranker",)
"""Model-name parts of the model families that take an ``instruction``."""


class _Status(msgspec.Struct):
    cost: float | None = None


class _Answer(msgspec.Struct):
    scores: list[float] | None = None
    input_tokens: float | None = None
    request_id: str | None = None
    inference_status: _Status | None = None


class DeepInfraProvider(RestProvider):
    """``deepinfra/<model>``: DeepInfra's inference API (``POST /v1/inference/{model}``).

    The model goes in the URL path, not the body. The query is sent once per document as
    ``queries``; documents are strings (dicts are rendered). ``instruction`` is sent for the
    models that take one (Qwen3-Reranker). The answer is a list of scores in input order, which
    rerankit maps to indexes, sorts and cuts to ``top_n``; documents are back-filled. A base on
    DeepInfra's OpenAI-compatible path (``/v1/openai``) is mapped to ``/v1/inference``. Options
    ``service_tier`` and ``webhook`` are passed through. Usage: ``input_tokens``; the reported
    ``inference_status.cost`` is kept as ``provider_meta["cost"]`` and ``request_id`` as the
    response id.
    """

    name = "deepinfra"
    api_key_env: ClassVar[tuple[str, ...]] = ("DEEPINFRA_API_KEY", "DEEPINFRA_TOKEN")
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("DEEPINFRA_API_BASE",)
    example_model = "deepinfra/Qwen/Qwen3-Reranker-8B"
    vendor = RestVendor(
        route="/v1/inference",
        default_base="https://api.deepinfra.com/v1/inference",
        strip=("/v1/openai",),
        model_field=None,
        query_field="queries",
        top_n_field=None,
        return_documents_field=None,
        wire_parameters={"instruction": "instruction"},
        extras=("service_tier", "webhook"),
        models={
            "Qwen/Qwen3-Reranker-0.6B": _INSTRUCTED,
            "Qwen/Qwen3-Reranker-4B": _INSTRUCTED,
            "Qwen/Qwen3-Reranker-8B": _INSTRUCTED,
        },
    )

    def capabilities(self, model: str) -> ModelCapabilities:
        caps = self.vendor.models.get(model)
        if caps is not None:
            return caps
        if any(family in model for family in _INSTRUCTION_MODELS):
            return msgspec.structs.replace(self.vendor.default, parameters=_INSTRUCTED.parameters)
        return self.vendor.default

    def url(self, request: RerankRequest, ctx: ProviderContext) -> str:
        return f"{super().url(request, ctx)}/{request.model}"

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        body = super().body(request, ctx)
        body["queries"] = [request.query] * len(request.documents)
        return body

    def parse(
        self, answer: HTTPResponse, request: RerankRequest, ctx: ProviderContext
    ) -> RerankResponse:
        decoded = ctx.decode(answer.body, _Answer)
        scores = decoded.scores
        if scores is None or len(scores) != len(request.documents):
            found = "no scores" if scores is None else f"{len(scores)} scores"
            raise ResponseValidationError(
                f"deepinfra answered {found} for {len(request.documents)} documents "
                f"(model {ctx.model!r})",
                provider=ctx.provider,
                model=ctx.model,
                request_id=decoded.request_id,
            )
        tokens, status = decoded.input_tokens, decoded.inference_status
        cost = status.cost if status is not None else None
        return RerankResponse(
            results=[RerankResult(index=i, relevance_score=s) for i, s in enumerate(scores)],
            id=decoded.request_id,
            usage=Usage(input_tokens=None if tokens is None else int(tokens)),
            provider_meta={} if cost is None else {"cost": cost},
        )
