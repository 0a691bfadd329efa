"""The cohere-compatible family: hosted and self-hosted rerank APIs that copy Cohere's v1 shape.

Each provider is a ``RestProvider`` with a ``RestVendor`` table; the few quirks beyond the table
(Fireworks' model prefix, SiliconFlow's per-model chunking options) are small hook overrides.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rerankit._images import ImageInput, image_of
from rerankit._types import RerankRequest
from rerankit.providers._base import OPTIONAL_PARAMETERS, ModelCapabilities, ProviderContext
from rerankit.providers._rest import RestProvider, RestVendor

__all__ = [
    "CohereCompatibleProvider",
    "FireworksAIProvider",
    "HostedVLLMProvider",
    "InfinityProvider",
    "JinaAIProvider",
    "LiteLLMProxyProvider",
    "SiliconFlowProvider",
    "TogetherAIProvider",
]

_ALL_PARAMETERS = frozenset(OPTIONAL_PARAMETERS)
_VERBATIM = {parameter: parameter for parameter in OPTIONAL_PARAMETERS}
"""The optional parameters, each sent under its own name."""

_LENIENT_RESULTS = ("results", "data", "")
"""Where a generic server may put its result list: ``results``, ``data`` or a bare array."""
_LENIENT_SCORES = ("relevance_score", "score")


class CohereCompatibleProvider(RestProvider):
    """Any self-hosted server that speaks the Cohere or Jina rerank shape (SGLang, llama.cpp, ...).

    The base URL is required: one ending in ``/rerank`` is the full URL, any other gets
    ``/rerank`` appended. A key is sent only when one is set. ``instruction``,
    ``max_tokens_per_doc`` and ``max_chunks_per_doc`` are forwarded verbatim when given; the
    server decides what they mean. Other server fields go in ``extra_body``. The answer is read
    leniently: results under ``results`` or ``data`` or a bare array, scores as
    ``relevance_score`` or ``score``. Score kind is ``unknown``.
    """

    name = "cohere_compatible"
    api_key_env: ClassVar[tuple[str, ...]] = ("COHERE_COMPATIBLE_API_KEY",)
    api_base_env: ClassVar[tuple[str, ...]] = ("COHERE_COMPATIBLE_API_BASE",)
    api_base_required = True
    example_model: ClassVar[str] = "cohere_compatible/BAAI/bge-reranker-v2-m3"
    vendor = RestVendor(
        route="/rerank",
        wire_parameters=_VERBATIM,
        results_fields=_LENIENT_RESULTS,
        score_fields=_LENIENT_SCORES,
        default=ModelCapabilities(parameters=_ALL_PARAMETERS),
    )


class LiteLLMProxyProvider(RestProvider):
    """A LiteLLM proxy server's rerank route (``{base}/v1/rerank``), with a proxy virtual key.

    The model is the proxy's public model name. Every parameter the caller sets is forwarded in
    the Cohere v1 shape (dict documents with ``rank_fields`` included), and the proxy's upstream
    adapter decides what reaches the vendor. A base already ending in ``/rerank``,
    ``/v1/rerank`` or ``/v2/rerank`` is used as it is. Usage is the proxy's account of the
    upstream call (``meta.billed_units`` and ``meta.tokens``). Score kind is ``unknown``.
    """

    name = "litellm_proxy"
    api_key_env: ClassVar[tuple[str, ...]] = ("LITELLM_PROXY_API_KEY",)
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("LITELLM_PROXY_API_BASE",)
    api_base_required = True
    example_model: ClassVar[str] = "litellm_proxy/rerank-v3.5"
    vendor = RestVendor(
        route="/v1/rerank",
        documents="native",
        rank_fields_field="rank_fields",
        wire_parameters=_VERBATIM,
        default=ModelCapabilities(parameters=_ALL_PARAMETERS, structured_documents=True),
    )


class TogetherAIProvider(RestProvider):
    """Together AI's rerank API (``https://api.together.xyz/v1/rerank``).

    The base is the API root including ``/v1``; ``/rerank`` is appended unless present. Dict
    documents are sent as objects with ``rank_fields``. Usage: ``prompt_tokens`` and
    ``total_tokens``. Score kind is ``unknown`` (model-dependent).
    """

    name = "together_ai"
    api_key_env: ClassVar[tuple[str, ...]] = (
        "TOGETHER_API_KEY",
        "TOGETHER_AI_API_KEY",
        "TOGETHERAI_API_KEY",
        "TOGETHER_AI_TOKEN",
    )
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("TOGETHER_AI_API_BASE",)
    example_model: ClassVar[str] = "together_ai/Salesforce/Llama-Rank-V1"
    vendor = RestVendor(
        route="/rerank",
        default_base="https://api.together.xyz/v1",
        documents="native",
        rank_fields_field="rank_fields",
        default=ModelCapabilities(structured_documents=True),
        models={
            "Salesforce/Llama-Rank-V1": ModelCapabilities(structured_documents=True),
            "mixedbread-ai/Mxbai-Rerank-Large-V2": ModelCapabilities(structured_documents=True),
        },
    )


_JINA = ModelCapabilities()
_JINA_M0 = ModelCapabilities(images=ImageInput(with_text=False))
"""jina-reranker-m0: an image is an http(s) URL or plain base64, one per document."""


class JinaAIProvider(RestProvider):
    """Jina AI's reranker API (``https://api.jina.ai/v1/rerank``).

    A base ending in ``/rerank`` is used as it is, one ending in ``/v1`` gets ``/rerank``, any
    other gets ``/v1/rerank`` (path prefixes are kept). Jina returns documents by default, so
    ``return_documents: false`` is always sent. ``jina-reranker-v3`` and ``jina-reranker-v3.5``
    are listwise (the query and every document in one context window): their scores compare
    only within one request, so a call that would need several requests or chunking is refused.
    ``jina-reranker-m0`` takes image documents: ``{"image": <URL or plain base64>}``, text or
    an image in one document; a request with an image sends every document as an object.
    Usage: ``total_tokens``. Score kind is ``unknown``.
    """

    name = "jina_ai"
    api_key_env: ClassVar[tuple[str, ...]] = ("JINA_AI_API_KEY", "JINA_AI_TOKEN", "JINA_API_KEY")
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("JINA_AI_API_BASE",)
    example_model: ClassVar[str] = "jina_ai/jina-reranker-v2-base-multilingual"
    sources: ClassVar[tuple[str, ...]] = (
        "https://jina.ai/models/jina-reranker-v3: listwise reranker, 131K input tokens, query "
        "and all candidate documents in one context window",
        "https://huggingface.co/jinaai/jina-reranker-v3.5: listwise, a drop-in upgrade of v3 "
        "with the same interface, up to 131K tokens of context",
        "https://jina.ai/models/jina-reranker-m0: text and image queries and documents; "
        "API request schema (docs.jina.ai): a document is {text} or {image}, an image an "
        "http(s) URL or base64",
    )
    default_requests_per_minute = 500.0
    default_tokens_per_minute = 1_000_000.0
    vendor = RestVendor(
        route="/v1/rerank",
        default_base="https://api.jina.ai",
        default=_JINA,
        models={
            "jina-reranker-v3.5": ModelCapabilities(listwise=True),
            "jina-reranker-v3": ModelCapabilities(listwise=True),
            "jina-reranker-m0": _JINA_M0,
            "jina-reranker-v2-base-multilingual": _JINA,
            "jina-colbert-v2": _JINA,
        },
    )

    def documents(self, request: RerankRequest) -> list[Any]:
        documents = super().documents(request)
        if request.source_documents is None or not any(map(image_of, request.documents)):
            return documents
        return [_jina_document(text) for text in request.documents]


def _jina_document(text: str) -> dict[str, str]:
    """A document as Jina's multimodal model takes it: ``{text}`` or ``{image}``."""
    image = image_of(text)
    if image is None:
        return {"text": text}
    return {"image": image.url if image.url is not None else image.b64}


class InfinityProvider(RestProvider):
    """A michaelfeil/infinity server's rerank route (``{base}/rerank``; the base is required).

    A key is sent only when one is set. Scores are probabilities by default; the option
    ``raw_scores=True`` asks for raw logits, and the response's score kind says ``logit``.
    Usage: ``prompt_tokens`` and ``total_tokens``.
    """

    name = "infinity"
    api_key_env: ClassVar[tuple[str, ...]] = ("INFINITY_API_KEY",)
    api_base_env: ClassVar[tuple[str, ...]] = ("INFINITY_API_BASE",)
    api_base_required = True
    example_model: ClassVar[str] = "infinity/mixedbread-ai/mxbai-rerank-xsmall-v1"
    vendor = RestVendor(
        route="/rerank",
        extras=("raw_scores",),
        logit_option=("raw_scores", True),
        default=ModelCapabilities(score_kind="probability"),
    )


class HostedVLLMProvider(RestProvider):
    """A vLLM rerank server (also SGLang and servers that copy vLLM's route).

    The target is always ``{root}/rerank``, where ``{root}`` is the base without a trailing
    ``/rerank`` and then ``/v1``, so an OpenAI-style base such as ``http://host:8000/v1`` works.
    ``instruction`` and ``max_tokens_per_doc`` are forwarded as such; whether the server uses them
    depends on the vLLM version and the model. Options ``truncate_prompt_tokens``, ``priority``
    and ``use_activation`` pass through; ``use_activation=False`` returns raw logits, and the
    response's score kind says ``logit``. The answer is read leniently, as for
    ``cohere_compatible``.
    """

    name = "hosted_vllm"
    api_key_env: ClassVar[tuple[str, ...]] = ("HOSTED_VLLM_API_KEY",)
    api_base_env: ClassVar[tuple[str, ...]] = ("HOSTED_VLLM_API_BASE",)
    api_base_required = True
    example_model: ClassVar[str] = "hosted_vllm/BAAI/bge-reranker-v2-m3"
    vendor = RestVendor(
        route="/rerank",
        strip=("/rerank", "/v1"),
        return_documents_field=None,
        wire_parameters={
            "instruction": "instruction",
            "max_tokens_per_doc": "max_tokens_per_doc",
        },
        extras=("truncate_prompt_tokens", "priority", "use_activation"),
        results_fields=_LENIENT_RESULTS,
        score_fields=_LENIENT_SCORES,
        logit_option=("use_activation", False),
        default=ModelCapabilities(parameters=frozenset({"instruction", "max_tokens_per_doc"})),
    )


class FireworksAIProvider(RestProvider):
    """Fireworks AI's rerank API (``https://api.fireworks.ai/inference/v1/rerank``).

    A model without ``/`` gets the ``fireworks/`` prefix (``qwen3-reranker-8b`` is sent as
    ``fireworks/qwen3-reranker-8b``); full ids such as ``accounts/<account>/models/<name>`` are
    sent unchanged. ``instruction`` is sent as Fireworks' ``task`` field. A base ending in
    ``/v1`` or ``/inference/v1`` gets ``/rerank``; any other gets ``/inference/v1/rerank``.
    Results come under ``data``. Usage: ``prompt_tokens`` and ``total_tokens``.
    """

    name = "fireworks_ai"
    api_key_env: ClassVar[tuple[str, ...]] = (
        "FIREWORKS_API_KEY",
        "FIREWORKS_AI_API_KEY",
        "FIREWORKSAI_API_KEY",
        "FIREWORKS_AI_TOKEN",
    )
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("FIREWORKS_AI_API_BASE", "FIREWORKS_API_BASE")
    example_model: ClassVar[str] = "fireworks_ai/qwen3-reranker-8b"
    vendor = RestVendor(
        route="/inference/v1/rerank",
        default_base="https://api.fireworks.ai/inference/v1",
        wire_parameters={"instruction": "task"},
        results_fields=("data",),
        default=ModelCapabilities(parameters=frozenset({"instruction"})),
    )

    def wire_model(self, model: str) -> str:
        return model if "/" in model else f"fireworks/{model}"


_SF_CHUNKING = ModelCapabilities(parameters=frozenset({"max_chunks_per_doc"}))
_SF_INSTRUCTION = ModelCapabilities(parameters=frozenset({"instruction"}))


class SiliconFlowProvider(RestProvider):
    """SiliconFlow's rerank API (``https://api.siliconflow.cn/v1/rerank``).

    For the international service use the base ``https://api.siliconflow.com``. A base ending in
    ``/v1`` gets ``/rerank``; any other gets ``/v1/rerank``. ``instruction`` is taken by the
    Qwen3 rerankers only, and ``max_chunks_per_doc`` (server-side chunking, each document scored
    by its best chunk) by the bge and bce models only, as is the option ``overlap_tokens`` (at
    most 80). Usage: ``tokens.input_tokens``, and their sum with ``tokens.output_tokens`` as
    ``total_tokens``. Score kind is ``unknown``.
    """

    name = "siliconflow"
    api_key_env: ClassVar[tuple[str, ...]] = ("SILICONFLOW_API_KEY",)
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("SILICONFLOW_API_BASE",)
    example_model: ClassVar[str] = "siliconflow/BAAI/bge-reranker-v2-m3"
    vendor = RestVendor(
        route="/v1/rerank",
        default_base="https://api.siliconflow.cn/v1",
        wire_parameters=_VERBATIM,
        extras=("overlap_tokens",),
        models={
            "BAAI/bge-reranker-v2-m3": _SF_CHUNKING,
            "Pro/BAAI/bge-reranker-v2-m3": _SF_CHUNKING,
            "netease-youdao/bce-reranker-base_v1": _SF_CHUNKING,
            "Qwen/Qwen3-Reranker-8B": _SF_INSTRUCTION,
            "Qwen/Qwen3-Reranker-4B": _SF_INSTRUCTION,
            "Qwen/Qwen3-Reranker-0.6B": _SF_INSTRUCTION,
        },
    )

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        body = super().body(request, ctx)
        if "overlap_tokens" in body and (
            "max_chunks_per_doc" not in self.capabilities(request.model).parameters
        ):
            ctx.unsupported(
                "overlap_tokens",
                instead="only the chunking models (bge, bce) take it, with max_chunks_per_doc",
            )
            del body["overlap_tokens"]
        return body
