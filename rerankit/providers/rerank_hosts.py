"""Rerank routes of routers, serverless hosts and self-hosted inference servers.

OpenRouter and Novita (hosted) and Xinference, llama.cpp's server, LocalAI, SGLang and
TensorRT-LLM's ``trtllm-serve rerank`` (self-hosted) copy the Cohere or Jina rerank shape; each is
a ``RestVendor`` table whose differences (document echo, score field, bare-array answers, usage
fields, extras) are written down rather than assumed. Cloudflare Workers AI has its own shape
(model in the URL, ``contexts``, an envelope around the answer) and overrides the hooks.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from rerankit._errors import ConfigurationError, ResponseValidationError
from rerankit._types import RerankRequest, RerankResponse, RerankResult, Usage
from rerankit.providers._base import ModelCapabilities, ProviderContext
from rerankit.providers._rest import Envelope, RestProvider, RestVendor, UsageFields, usage_from

if TYPE_CHECKING:
    from rerankit._http import HTTPResponse

__all__ = [
    "CloudflareProvider",
    "LlamaCppProvider",
    "LocalAIProvider",
    "NovitaProvider",
    "OpenRouterProvider",
    "SGLangProvider",
    "TensorRTLLMProvider",
    "XinferenceProvider",
]

_LENIENT_RESULTS = ("results", "data", "")
_INSTRUCTION = frozenset({"instruction"})


# --- hosted -----------------------------------------------------------------------------------


class _OpenRouterMeta(msgspec.Struct):
    provider: Any = None
    usage: Any = None


class OpenRouterProvider(RestProvider):
    """``openrouter/<vendor>/<model>``: OpenRouter's rerank router (``POST /api/v1/rerank``).

    The model is OpenRouter's routed id, which holds a slash (``openrouter/cohere/rerank-v3.5``
    sends ``"model": "cohere/rerank-v3.5"``). A base ending in ``/api/v1`` (the chat base) gets
    ``/rerank``; a bare host gets ``/api/v1/rerank``. The API has no document flag (every result
    echoes ``document.text``), so documents are back-filled by rerankit. Option ``routing``
    (OpenRouter's routing preferences, e.g. ``{"order": [...], "allow_fallbacks": false}``) is
    sent as OpenRouter's ``provider`` field (``provider=`` already names rerankit's provider).
    Usage: ``usage.total_tokens`` and ``usage.search_units``; the upstream that served the call
    and ``usage.cost`` (OpenRouter credits) are kept in ``provider_meta``. Score
    kind is ``unknown``: it is the upstream model's.
    """

    name = "openrouter"
    api_key_env: ClassVar[tuple[str, ...]] = ("OPENROUTER_API_KEY",)
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("OPENROUTER_API_BASE",)
    example_model = "openrouter/cohere/rerank-v3.5"
    sources: ClassVar[tuple[str, ...]] = (
        "https://openrouter.ai/qwen/qwen3-reranker-0.6b/llms.txt: POST "
        "https://openrouter.ai/api/v1/rerank, Bearer $OPENROUTER_API_KEY, fields model, query, "
        "documents: string[]; reference at openrouter.ai/docs/api/api-reference/rerank/"
        "submit-a-rerank-request",
        "https://openrouter.ai/docs/client-sdks/go/sdks/rerank/README: POST /rerank of the "
        "rerank router, body {model, query, documents, top_n}, model cohere/rerank-v3.5",
        "https://docs.rs/crate/openrouter-client/0.1.1/source/src/types/rerank.rs (mirrors the "
        "Go SDK): request {model, query, documents, top_n?, provider?}; response {id, model, "
        "provider, results (descending relevance), usage}",
    )
    vendor = RestVendor(
        route="/api/v1/rerank",
        default_base="https://openrouter.ai/api/v1",
        return_documents_field=None,
    )
    options = frozenset({"routing"})

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        body = super().body(request, ctx)
        routing = request.options.get("routing")
        if routing is not None:
            if not isinstance(routing, dict):
                raise ConfigurationError(
                    f"openrouter option routing must be a dict, got {type(routing).__name__}"
                )
            body["provider"] = routing
        return body

    def provider_meta(self, answer: HTTPResponse, envelope: Envelope) -> dict[str, Any]:
        try:
            figures = msgspec.json.decode(answer.body, type=_OpenRouterMeta)
        except msgspec.DecodeError:
            return {}
        meta: dict[str, Any] = {}
        if isinstance(figures.provider, str):
            meta["provider"] = figures.provider
        if isinstance(figures.usage, dict) and isinstance(figures.usage.get("cost"), int | float):
            meta["cost"] = figures.usage["cost"]
        return meta


class NovitaProvider(RestProvider):
    """``novita/<model>``: Novita AI's rerank API (``POST /openai/v1/rerank``).

    The base is ``https://api.novita.ai/openai/v1``; ``/rerank`` is appended unless present (a
    bare host gets ``/openai/v1/rerank``; LiteLLM's Novita chat base ``/v3/openai`` is another
    API). The body is ``{model, query, documents, top_n}`` with string documents (dicts are
    rendered); there is no document flag, so documents are back-filled by rerankit. Usage:
    ``usage.prompt_tokens`` and ``usage.total_tokens``. Score kind is ``unknown``.
    """

    name = "novita"
    api_key_env: ClassVar[tuple[str, ...]] = ("NOVITA_API_KEY",)
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("NOVITA_API_BASE",)
    example_model = "novita/baai/bge-reranker-v2-m3"
    sources: ClassVar[tuple[str, ...]] = (
        "https://novita.ai/docs/api-reference/model-apis-llm-create-rerank: POST "
        "https://api.novita.ai/openai/v1/rerank, Bearer, body {model, query, documents: "
        "string[], top_n}; answer {id, results: [{document: {text}, index, relevance_score}], "
        "usage: {completion_tokens, prompt_tokens, total_tokens}}",
        "RAGFlow's Novita rerank driver (PR for issue #15012, gitea.youngkingdom.org mirror): "
        "'baai/bge-reranker-v2-m3 is documented in Novita's model library with a 1024-token "
        "limit'",
    )
    vendor = RestVendor(
        route="/openai/v1/rerank",
        default_base="https://api.novita.ai/openai/v1",
        return_documents_field=None,
        models={"baai/bge-reranker-v2-m3": ModelCapabilities(max_pair_tokens=1_024)},
    )


class _CloudflareItem(msgspec.Struct):
    id: int | None = None
    score: float | None = None


class _CloudflareResult(msgspec.Struct):
    response: list[_CloudflareItem] | None = None
    usage: UsageFields | None = None


class _CloudflareAnswer(msgspec.Struct):
    result: _CloudflareResult | None = None
    success: bool | None = None


class CloudflareProvider(RestProvider):
    """``cloudflare/<model>``: Workers AI rerankers (``@cf/baai/bge-reranker-base``).

    The URL is account-scoped and names the model:
    ``{base}/accounts/{account_id}/ai/run/{model}``, base ``https://api.cloudflare.com/client/v4``.
    The account id is the option ``account_id``, else ``CLOUDFLARE_ACCOUNT_ID``. A base already
    holding ``/ai/run/`` is used as it is. The body is ``{query, contexts: [{text}], top_k}``:
    no model field, dicts are rendered into ``text``, and an empty document is refused before
    sending (the schema requires non-empty text). The answer
    ``{result: {response: [{id, score}]}, success}`` is unordered; ``id`` indexes ``contexts``.
    Usage: ``result.usage`` token counts when present (the model schema lists none). Scores are
    raw: the model page says a sigmoid maps them to [0, 1], so the score kind is ``logit``.
    """

    name = "cloudflare"
    api_key_env: ClassVar[tuple[str, ...]] = (
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_AUTH_TOKEN",
        "CLOUDFLARE_API_KEY",
    )
    api_key_required = True
    api_base_env: ClassVar[tuple[str, ...]] = ("CLOUDFLARE_API_BASE",)
    account_env: ClassVar[tuple[str, ...]] = ("CLOUDFLARE_ACCOUNT_ID",)
    example_model = "cloudflare/@cf/baai/bge-reranker-base"
    sources: ClassVar[tuple[str, ...]] = (
        "https://developers.cloudflare.com/workers-ai/models/bge-reranker-base: POST "
        "https://api.cloudflare.com/client/v4/accounts/{ACCOUNT_ID}/ai/run/@cf/baai/"
        "bge-reranker-base with Bearer $CLOUDFLARE_API_TOKEN (another example: "
        "$CLOUDFLARE_AUTH_TOKEN); input query (min 1), top_k (min 1), contexts [{text (min "
        "1)}]; output response [{id, score}]; 'the score can be mapped to a float value in "
        "[0,1] by sigmoid function'; $0.0031 per M input tokens",
        "@cloudflare/workers-types Ai_Cf_Baai_Bge_Reranker_Base_Input/_Output (rendered at "
        "docs.livestore.dev/api/sync-cf/.../ai_cf_baai_bge_reranker_base_input): input {query, "
        "contexts: [{text}], top_k ('number of returned results starting with the best score')}; "
        "output {response: [{id: index of the context, score}]}",
        "https://www.promptfoo.dev/docs/providers/cloudflare-ai/: REST under "
        "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/..., env "
        "CLOUDFLARE_ACCOUNT_ID",
    )
    options = frozenset({"account_id"})
    vendor = RestVendor(
        route="/ai/run",
        default_base="https://api.cloudflare.com/client/v4",
        model_field=None,
        documents_field="contexts",
        top_n_field="top_k",
        return_documents_field=None,
        default=ModelCapabilities(score_kind="logit"),
    )

    def url(self, request: RerankRequest, ctx: ProviderContext) -> str:
        base = (ctx.api_base or self.vendor.default_base or "").rstrip("/")
        if "/ai/run/" in base:
            return base
        account = request.options.get("account_id") or next(
            (os.environ[name] for name in self.account_env if os.environ.get(name)), None
        )
        if not isinstance(account, str) or not account.strip():
            raise ConfigurationError(
                "cloudflare needs an account id: pass account_id=... or set "
                + " or ".join(self.account_env)
            )
        return f"{base}/accounts/{account.strip()}/ai/run/{request.model}"

    def documents(self, request: RerankRequest) -> list[Any]:
        if not all(text.strip() for text in request.documents):
            raise ConfigurationError(
                "cloudflare rerankers refuse empty documents: every text in documents must be "
                "non-blank"
            )
        return [{"text": text} for text in request.documents]

    def parse(
        self, answer: HTTPResponse, request: RerankRequest, ctx: ProviderContext
    ) -> RerankResponse:
        decoded = ctx.decode(answer.body, _CloudflareAnswer)
        result = decoded.result
        if decoded.success is False or result is None or result.response is None:
            raise ResponseValidationError(
                f"cloudflare answered without result.response for model {ctx.model!r}",
                provider=ctx.provider,
                model=ctx.model,
            )
        results = []
        for item in result.response:
            if item.id is None or item.score is None:
                raise ResponseValidationError(
                    f"cloudflare sent a result without id or score for model {ctx.model!r}",
                    provider=ctx.provider,
                    model=ctx.model,
                )
            results.append(RerankResult(item.id, item.score))
        usage = usage_from(Envelope(usage=result.usage)) if result.usage else Usage()
        return RerankResponse(results=results, usage=usage, score_kind="logit")


# --- self-hosted ------------------------------------------------------------------------------


class XinferenceProvider(RestProvider):
    """``xinference/<model uid>``: a Xorbits Inference server (``{base}/v1/rerank``).

    The model is the **model UID** of the launched model. A base is required (the server's
    default port is 9997); a base ending in ``/v1`` gets ``/rerank``. A key is sent only when
    set (servers with authentication on). The body is the Cohere v1 shape with string documents
    and ``return_documents: false``; option ``return_len`` asks for token counts, which come
    back as ``meta.tokens.input_tokens``. The answer is Cohere-shaped
    (``{id, results: [{index, relevance_score, document}], meta}``). Score kind is ``unknown``
    (it depends on the backend).
    """

    name = "xinference"
    api_key_env: ClassVar[tuple[str, ...]] = ("XINFERENCE_API_KEY",)
    api_base_env: ClassVar[tuple[str, ...]] = ("XINFERENCE_API_BASE",)
    api_base_required = True
    example_model = "xinference/bge-reranker-v2-m3"
    sources: ClassVar[tuple[str, ...]] = (
        "https://inference.readthedocs.io/en/v2.10.0/models/model_abilities/rerank.html: POST "
        "http://<host>:<port>/v1/rerank, body {model: <MODEL_UID>, query, documents}; answer "
        "{id, results: [{index, relevance_score, document}]}",
        "https://inference.readthedocs.io/en/v2.10.0/reference/generated/xinference.client."
        "restful.restful_client.RESTfulRerankModelHandle.rerank.html: top_n, "
        "max_chunks_per_doc, return_documents, return_len ('if return tokens len')",
    )
    vendor = RestVendor(
        route="/v1/rerank",
        extras=("return_len",),
        results_fields=_LENIENT_RESULTS,
    )


class LlamaCppProvider(RestProvider):
    """``llamacpp/<model>``: llama.cpp's ``llama-server`` started with ``--rerank``.

    The route is ``{base}/v1/rerank`` (the server also answers ``/rerank``, ``/reranking`` and
    ``/v1/reranking``); a base is required, and one ending in ``/v1`` gets ``/rerank``. The model
    field is optional for the server (it uses the loaded model); rerankit sends what the model
    string names. The body is ``{model, query, documents, top_n}`` (Jina format); the server
    has no document flag and echoes no documents. A key is sent only when set (``--api-key``).
    The answer is ``{results: [{index, relevance_score}]}`` with OpenAI-style ``usage``. Scores
    are the raw rank-pooling output (e.g. 8.6 and -5.4), so the score kind is ``logit``.
    """

    name = "llamacpp"
    api_key_env: ClassVar[tuple[str, ...]] = ("LLAMACPP_API_KEY",)
    api_base_env: ClassVar[tuple[str, ...]] = ("LLAMACPP_API_BASE",)
    api_base_required = True
    example_model = "llamacpp/bge-reranker-v2-m3"
    sources: ClassVar[tuple[str, ...]] = (
        "llama.cpp tools/server README (as quoted in huggingface.co/datasets/ping98k/"
        "llama-cpp-server-doc-qa): --rerank/--reranking; POST /reranking with aliases /rerank, "
        "/v1/rerank, /v1/reranking; body {model (optional), query, documents: string[], top_n}",
        "https://www.rubydoc.info/gems/pikuri-vectordb/Pikuri/VectorDb/Reranker/LlamaServer: "
        "POST <endpoint>/v1/rerank -> {results: [{index, relevance_score}]}",
        "https://lemonade-server.ai/docs/api/llamacpp/: forwards to llama.cpp's /v1/rerank; "
        "the answer {model, object: list, results: [{index, relevance_score: 8.6067..., "
        "-5.3886...}]}: raw scores",
    )
    vendor = RestVendor(
        route="/v1/rerank",
        return_documents_field=None,
        default=ModelCapabilities(score_kind="logit"),
    )


class LocalAIProvider(RestProvider):
    """``localai/<model>``: LocalAI's Jina-compatible rerank route (``{base}/v1/rerank``).

    A base is required (LocalAI listens on port 8080 by default); a base ending in ``/v1`` gets
    ``/rerank``. The body is ``{model, query, documents, top_n}``; there is no document flag
    (the text is always echoed), so documents are back-filled by rerankit. A key is sent only
    when set. Some backends do not sort or cut to ``top_n``; rerankit sorts and cuts anyway.
    Score kind is ``unknown`` (it depends on the backend).
    """

    name = "localai"
    api_key_env: ClassVar[tuple[str, ...]] = ("LOCALAI_API_KEY",)
    api_base_env: ClassVar[tuple[str, ...]] = ("LOCALAI_API_BASE",)
    api_base_required = True
    example_model = "localai/bge-reranker-v2-m3"
    sources: ClassVar[tuple[str, ...]] = (
        "https://docs.langchain.com/oss/python/integrations/document_transformers/localai_rerank:"
        " LocalAI Reranker API, api base http://localhost:8080, model bge-reranker-v2-m3 (the "
        "wire shape is LocalAI's Jina one: core/schema/jina.go)",
    )
    vendor = RestVendor(route="/v1/rerank", return_documents_field=None)


class SGLangProvider(RestProvider):
    """``sglang/<model>``: an SGLang server's rerank route (``{base}/v1/rerank``).

    Cross-encoders run with ``--is-embedding``; decoder-only yes/no rerankers (Qwen3-Reranker)
    run without it. A base is required; one ending in ``/v1`` gets ``/rerank``. The body is
    ``{model, query, documents, top_n, return_documents: false}`` (SGLang echoes documents by
    default); ``instruction`` is sent as SGLang's ``instruct``. The answer is a **bare JSON
    array** ``[{index, score, document?}]``, sorted. No usage is reported. Score kind is
    ``unknown``.
    """

    name = "sglang"
    api_key_env: ClassVar[tuple[str, ...]] = ("SGLANG_API_KEY",)
    api_base_env: ClassVar[tuple[str, ...]] = ("SGLANG_API_BASE",)
    api_base_required = True
    example_model = "sglang/BAAI/bge-reranker-v2-m3"
    sources: ClassVar[tuple[str, ...]] = (
        "https://docs.sglang.io/docs/supported-models/rerank_models: cross-encoders with "
        "--is-embedding, decoder-only Qwen3-Reranker (yes/no log-probs) without it",
        "sgl-project/sglang docs/supported_models/rerank_models.md: POST /v1/rerank {model, "
        "query, documents}; the answer is a list of {score, document, ...}",
    )
    vendor = RestVendor(
        route="/v1/rerank",
        wire_parameters={"instruction": "instruct"},
        results_fields=("",),
        score_fields=("score", "relevance_score"),
        default=ModelCapabilities(parameters=_INSTRUCTION),
    )


class TensorRTLLMProvider(RestProvider):
    """``tensorrt_llm/<model>``: TensorRT-LLM's ``trtllm-serve rerank`` (``{base}/v1/rerank``).

    The Jina/vLLM-style route: ``/v1/rerank`` (an alias of ``/rerank``; ``/v2/rerank`` is the
    Cohere v2 form of the same server). A base is required; one ending in ``/v1`` gets
    ``/rerank``. The body is ``{model, query, documents, top_n, return_documents: false}``.
    Results come sorted by descending relevance. A key is sent only when set (none is
    documented). Score kind is ``unknown``.
    """

    name = "tensorrt_llm"
    api_key_env: ClassVar[tuple[str, ...]] = ("TENSORRT_LLM_API_KEY",)
    api_base_env: ClassVar[tuple[str, ...]] = ("TENSORRT_LLM_API_BASE",)
    api_base_required = True
    example_model = "tensorrt_llm/Qwen/Qwen3-Reranker-0.6B"
    sources: ClassVar[tuple[str, ...]] = (
        "https://nvidia.github.io/TensorRT-LLM/features/reranking.html: trtllm-serve rerank; "
        "POST /rerank (Jina/vLLM style), /v1/rerank (alias), /v2/rerank (Cohere v2); body "
        "{model, query, documents, top_n, return_documents}; results ordered by descending "
        "relevance score",
    )
    vendor = RestVendor(route="/v1/rerank")
