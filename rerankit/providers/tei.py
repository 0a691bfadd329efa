"""Hugging Face Text Embeddings Inference (TEI): ``POST {base}/rerank``, answered by a bare list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import msgspec

from rerankit.providers._base import ModelCapabilities, ProviderContext
from rerankit.providers._rest import RestProvider, RestVendor

if TYPE_CHECKING:
    from rerankit._http import HTTPResponse
    from rerankit._types import RerankRequest, RerankResponse

__all__ = ["HuggingFaceTEIProvider"]

COMPUTE_TOKENS_HEADER = "x-compute-tokens"


class HuggingFaceTEIProvider(RestProvider):
    """``huggingface/<model>``: a Text Embeddings Inference (TEI) server's ``/rerank`` route.

    The base URL is required: a self-hosted TEI server or a Hugging Face Inference Endpoint
    running TEI. The key is sent as a bearer token only when set. A TEI server serves one
    model, so the model name is not sent. Documents go as ``texts`` (dicts are rendered);
    ``return_text`` is sent as ``false``; TEI has no cut-off, so rerankit applies ``top_n``.
    Options ``truncate``, ``truncation_direction`` and ``raw_scores`` are sent only when given
    (so the server's ``--auto-truncate`` default applies). Scores are probabilities, or logits
    with ``raw_scores=True``. Usage: the ``x-compute-tokens`` answer header, as input tokens.
    A server accepts at most ``--max-client-batch-size`` texts per request (32 by default).
    """

    name = "huggingface"
    api_key_env: ClassVar[tuple[str, ...]] = ("HUGGINGFACE_API_KEY", "HF_TOKEN")
    api_base_env: ClassVar[tuple[str, ...]] = ("HF_API_BASE", "HUGGINGFACE_API_BASE")
    api_base_required = True
    example_model = "huggingface/BAAI/bge-reranker-v2-m3"
    vendor = RestVendor(
        route="/rerank",
        model_field=None,
        documents_field="texts",
        top_n_field=None,
        return_documents_field="return_text",
        extras=("truncate", "truncation_direction", "raw_scores"),
        results_fields=("",),
        score_fields=("score",),
        logit_option=("raw_scores", True),
        default=ModelCapabilities(max_documents=32, score_kind="probability"),
    )

    def parse(
        self, answer: HTTPResponse, request: RerankRequest, ctx: ProviderContext
    ) -> RerankResponse:
        response = super().parse(answer, request, ctx)
        tokens = _compute_tokens(answer.headers)
        if tokens is not None:
            response.usage = msgspec.structs.replace(response.usage, input_tokens=tokens)
        return response


def _compute_tokens(headers: Mapping[str, str]) -> int | None:
    """The ``x-compute-tokens`` header as an int, looked up without regard to case."""
    value = headers.get(COMPUTE_TOKENS_HEADER)
    if value is None:
        for key, item in headers.items():
            if key.lower() == COMPUTE_TOKENS_HEADER:
                value = item
                break
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
