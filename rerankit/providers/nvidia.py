"""NVIDIA NIM reranking: the hosted retrieval route, and the ``/v1/ranking`` route of NIMs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from rerankit._errors import ConfigurationError
from rerankit._images import ImageInput, image_of
from rerankit._prepare import missing_key_for_base
from rerankit.providers._base import ModelCapabilities, ProviderContext
from rerankit.providers._rest import RestProvider, RestVendor

if TYPE_CHECKING:
    from rerankit._types import RerankRequest

__all__ = ["NvidiaNIMProvider"]

DEFAULT_BASE = "https://ai.api.nvidia.com"
CHAT_HOST = "integrate.api.nvidia.com"
"""The host LiteLLM's ``NVIDIA_NIM_API_BASE`` usually names for chat; it serves no reranking."""
HOSTED_DOMAIN = "api.nvidia.com"
RANKING_PREFIX = "ranking/"

_VERSION_UNDERSCORE = re.compile(r"(?<=\d)_(?=\d)")
_NIM = ModelCapabilities(score_kind="logit")
_NIM_8K = ModelCapabilities(max_pair_tokens=8_192, score_kind="logit")
_PNG_JPEG = ImageInput(urls=False, media_types=frozenset({"image/png", "image/jpeg"}))
"""NVIDIA's multimodal rerankers: PNG or JPEG bytes as a base64 data URL, beside text or
alone; URLs and asset ids are refused."""


def _split(model: str) -> tuple[bool, str]:
    """Whether ``model`` asks for the ranking route, and the model without ``ranking/``."""
    if model.startswith(RANKING_PREFIX):
        return True, model[len(RANKING_PREFIX) :]
    return False, model


def _base(api_base: str | None) -> str:
    """The base URL calls go to: the default for none, and for the chat host."""
    base = (api_base or DEFAULT_BASE).rstrip("/")
    return DEFAULT_BASE if _host(base) == CHAT_HOST else base


def _host(base: str) -> str:
    return (urlsplit(base).hostname or "").lower()


def _is_hosted(base: str) -> bool:
    host = _host(base)
    return host == HOSTED_DOMAIN or host.endswith("." + HOSTED_DOMAIN)


def body_model(model: str) -> str:
    """The model as the JSON body names it: ``ranking/`` removed, ``3_2`` written ``3.2``."""
    return _VERSION_UNDERSCORE.sub(".", _split(model)[1])


def path_model(model: str) -> str:
    """The model as the retrieval route's URL path names it: every ``.`` written ``_``."""
    return body_model(model).replace(".", "_")


def _passage(text: str) -> dict[str, str]:
    """``{text}``, ``{text, image}`` or ``{image}`` (an image alone omits ``text``)."""
    image = image_of(text)
    if image is None:
        return {"text": text}
    passage = {"text": str(text)} if text else {}
    passage["image"] = image.data_url
    return passage


class NvidiaNIMProvider(RestProvider):
    """``nvidia_nim/<model>``: NVIDIA NIM rerankers, hosted or self-hosted.

    Two routes, chosen by the model string: ``nvidia_nim/<model>`` calls the hosted retrieval
    route ``{base}/v1/retrieval/<model>/reranking`` (the URL path writes ``.`` as ``_``, the body
    keeps ``.``; either spelling is accepted), and ``nvidia_nim/ranking/<model>`` calls
    ``{base}/v1/ranking``, the route of self-hosted NIMs and newer models. A base containing
    ``/retrieval/`` or ending in ``/ranking`` is used as it is; a trailing ``/v1`` is dropped; a
    base on the chat host ``integrate.api.nvidia.com`` is ignored. The key is optional
    (self-hosted NIMs need none) but required on NVIDIA's hosted API. The body is
    ``{model, query: {text}, passages: [{text}]}``; dicts are rendered. ``top_n`` is applied by
    rerankit on both routes (no ``top_k`` is sent). The multimodal models
    (``llama-nemotron-rerank-vl-1b-v2``, ``Nemotron-3.5-Rerank-8B-BF16``) take image documents:
    PNG or JPEG bytes, sent as a ``data:`` URL in the passage's ``image``. Option ``truncate``
    (``"END"`` or ``"NONE"``) is passed through. Scores are raw logits. Usage:
    ``usage.total_tokens`` when reported.
    """

    name = "nvidia_nim"
    api_key_env: ClassVar[tuple[str, ...]] = ("NVIDIA_NIM_API_KEY", "NVIDIA_API_KEY")
    api_base_env: ClassVar[tuple[str, ...]] = ("NVIDIA_NIM_API_BASE",)
    example_model = "nvidia_nim/nvidia/llama-nemotron-rerank-1b-v2"
    sources: ClassVar[tuple[str, ...]] = (
        "https://docs.nvidia.com/nim/nemo-retriever/reranking/latest/support-matrix.html: "
        "nvidia/llama-nemotron-rerank-vl-1b-v2, -rerank-1b-v2 and -rerank-500m-v2, 8,192 max "
        "tokens per query + passage pair",
        "https://docs.nvidia.com/nim/nemo-retriever/reranking/2.4/support-matrix.html: "
        "nvidia/Nemotron-3.5-Rerank-8B-BF16, 32,768 tokens, limited by the NIM to 10,240 per "
        "pair unless NIM_PIPELINE_MAX_SEQ_LEN is raised",
        "https://docs.nvidia.com/nim/nemo-retriever/text-reranking/1.4.0/support-matrix.html: "
        "nv-rerankqa-mistral-4b-v3, 512 tokens",
        "https://docs.nvidia.com/nim/nemo-retriever/reranking/2.4/use-the-api-openai.html: VLM "
        "reranking requests: a passage has text, image or both (an image alone omits text); "
        "images are base64 data URLs of PNG or JPEG bytes; asset ids and other encodings are "
        "rejected; up to 512 passages",
    )
    vendor = RestVendor(
        route="/v1/ranking",
        default_base=DEFAULT_BASE,
        documents_field="passages",
        top_n_field=None,
        return_documents_field=None,
        extras=("truncate",),
        results_fields=("rankings",),
        score_fields=("logit",),
        default=_NIM,
        models={
            "nvidia/llama-nemotron-rerank-1b-v2": _NIM_8K,
            "nvidia/llama-nemotron-rerank-500m-v2": _NIM_8K,
            "nvidia/llama-nemotron-rerank-vl-1b-v2": ModelCapabilities(
                max_pair_tokens=8_192, score_kind="logit", images=_PNG_JPEG
            ),
            "nvidia/Nemotron-3.5-Rerank-8B-BF16": ModelCapabilities(
                max_pair_tokens=10_240, score_kind="logit", images=_PNG_JPEG
            ),
            "nvidia/llama-3.2-nv-rerankqa-1b-v2": _NIM_8K,
            "nvidia/llama-3.2-nemoretriever-500m-rerank-v2": _NIM_8K,
            "nvidia/nv-rerankqa-mistral-4b-v3": ModelCapabilities(
                max_pair_tokens=512, score_kind="logit"
            ),
        },
    )

    @classmethod
    def needs_api_key(cls, api_base: str | None) -> bool:
        """NVIDIA's hosted API needs a key; a self-hosted NIM does not."""
        return _is_hosted(_base(api_base))

    def capabilities(self, model: str) -> ModelCapabilities:
        return self.vendor.models.get(body_model(model), self.vendor.default)

    def wire_model(self, model: str) -> str:
        return body_model(model)

    def url(self, request: RerankRequest, ctx: ProviderContext) -> str:
        base = _base(ctx.api_base)
        if not ctx.api_key and _is_hosted(base):
            raise ConfigurationError(missing_key_for_base(self.name, type(self), base))
        if "/retrieval/" in base or base.endswith("/ranking"):
            return base
        base = base.removesuffix("/v1")
        ranking, _ = _split(request.model)
        if ranking:
            return f"{base}/v1/ranking"
        return f"{base}/v1/retrieval/{path_model(request.model)}/reranking"

    def documents(self, request: RerankRequest) -> list[Any]:
        if request.source_documents is None:
            return [{"text": text} for text in request.documents]
        return [_passage(text) for text in request.documents]

    def body(self, request: RerankRequest, ctx: ProviderContext) -> dict[str, Any]:
        body = super().body(request, ctx)
        body["query"] = {"text": request.query}
        return body
