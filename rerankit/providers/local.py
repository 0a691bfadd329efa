"""``local/<model>``: rerankers that run in this process, with no network and no API key."""

from __future__ import annotations

from collections.abc import Mapping

from rerankit._errors import ConfigurationError
from rerankit._offload import run_sized
from rerankit._types import RerankRequest, RerankResponse, RerankResult
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext
from rerankit.providers._bm25 import bm25_scores
from rerankit.providers._onnx_config import (
    EXTRA_MODULES,
    NEURAL_OPTIONS,
    check_options,
    missing_extra,
    resolve_model,
)

__all__ = ["LocalProvider"]

_BM25 = ModelCapabilities(score_kind="unknown")
_CROSS_ENCODER = ModelCapabilities(
    score_kind="probability", parameters=frozenset({"max_tokens_per_doc"})
)
_BI_ENCODER = ModelCapabilities(score_kind="unknown", parameters=frozenset({"max_tokens_per_doc"}))
BM25_INLINE_WORK = 32_768
"""BM25 work scored inline, in characters' worth (see ``_bm25_work``): ~0.23 µs each at most
(CJK), so ~8 ms; more is scored on a worker thread, off the event loop."""


class LocalProvider(Provider):
    """Offline rerankers that run in this process. See [Local models](local.md) for details.

    - `local/bm25`: Okapi BM25 over the candidate documents, with no extra dependency. Options:
      `k1` (term-frequency saturation, default 1.5) and `b` (length normalisation, default 0.75).
    - `local/cross-encoder:<model>`: an ONNX cross-encoder scores each (query, document) pair.
      The score is a probability (sigmoid of the logit) unless `activation="none"` asks for the
      raw logit, or the model's `config.json` records an identity activation.
    - `local/bi-encoder:<model>`: an ONNX embedding model; the score is the cosine similarity
      (-1 to 1) of the query and document embeddings, which are cached per document text.

    `<model>` is a Hugging Face Hub id (`<org>/<name>[@<revision>]`, downloaded once into the
    Hub's cache: the ONNX file, tokenizer and config only), a model directory (`model.onnx` or
    `onnx/model.onnx`, `tokenizer.json`, `config.json`), or `pkg:<package>` for a Python package
    that ships one; an existing path wins over a Hub id, and `hf:<org>/<name>` is always the
    Hub. `local/<name>` runs a model named in the `models` option: with
    `AsyncClient(providers={"local": {"options": {"models": {"minilm": "cross-encoder:/m/x"}}}})`,
    `local/minilm` is `local/cross-encoder:/m/x`.
    Neural models need the `local` extra (`pip install 'rerankit[local]'`, or
    `pip install '.[local]'` in a checkout of rerankit's repository).
    Their options: `activation`, `batch_size`, `cache_size`, `document_prefix`, `max_batch_tokens`,
    `max_length`, `onnx_file`, `pooling`, `quantized`, `query_prefix`, `spin_wait` and `threads`;
    options that do not apply to a model are ignored.
    """

    name = "local"
    options = frozenset({"k1", "b", "models", *NEURAL_OPTIONS})
    example_model = "local/bm25"

    def capabilities(self, model: str) -> ModelCapabilities:
        if model == "bm25":
            return _BM25
        return _CROSS_ENCODER if model.startswith("cross-encoder:") else _BI_ENCODER

    def model_table(self) -> Mapping[str, ModelCapabilities]:
        return {
            "bm25": _BM25,
            "cross-encoder:<model>": _CROSS_ENCODER,
            "bi-encoder:<model>": _BI_ENCODER,
        }

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        if ctx.extra_body:
            ctx.unsupported("extra_body", instead="local models send no request")
        if ctx.extra_headers:
            ctx.unsupported("extra_headers", instead="local models send no request")
        if request.model == "bm25":
            return await _bm25(request)
        resolved = resolve_model(request.model, request.options.get("models"))
        if resolved is None:
            names = ", ".join(self._names(request))
            raise ConfigurationError(f"unknown local model {request.model!r}; available: {names}")
        kind, source, model_options = resolved
        where = f"local/{request.model}"
        call_options = {k: v for k, v in request.options.items() if k in NEURAL_OPTIONS}
        options = check_options({**model_options, **call_options}, where)
        try:  # onnxruntime, tokenizers and numpy: imported on first use only
            from rerankit.providers._onnx_models import score
        except ImportError as exc:
            if exc.name not in EXTRA_MODULES:
                raise
            raise missing_extra(exc.name) from exc
        scores, score_kind = await score(
            kind,
            source,
            options,
            request.query,
            request.documents,
            request.max_tokens_per_doc,
            where,
        )
        return RerankResponse(
            results=[RerankResult(index=i, relevance_score=s) for i, s in enumerate(scores)],
            score_kind=score_kind,
        )

    def _names(self, request: RerankRequest) -> list[str]:
        named = request.options.get("models")
        return [*self.model_table(), *(sorted(named) if isinstance(named, Mapping) else ())]


async def _bm25(request: RerankRequest) -> RerankResponse:
    k1 = _number(request.options.get("k1", 1.5), "k1")
    b = _number(request.options.get("b", 0.75), "b")
    if not 0 <= b <= 1:
        raise ConfigurationError(f"local/bm25 option b must be between 0 and 1, got {b}")
    work = _bm25_work(request.query, request.documents)
    results = await run_sized(work, BM25_INLINE_WORK, _bm25_results, request, k1, b)
    return RerankResponse(results=results)


def _bm25_work(query: str, documents: list[str]) -> int:
    """BM25's cost in characters' worth: each document character, ~10 per document, and one
    per dozen query characters per document (each query term is looked up in each document)."""
    return sum(map(len, documents)) + len(documents) * (10 + len(query) // 12)


def _bm25_results(request: RerankRequest, k1: float, b: float) -> list[RerankResult]:
    scores = bm25_scores(request.query, request.documents, k1=k1, b=b)
    return [RerankResult(index=i, relevance_score=s) for i, s in enumerate(scores)]


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"local/bm25 option {name} must be a number >= 0, got {value!r}")
    return float(value)
