"""``local/<model>``: rerankers that run in this process, with no network and no API key."""

from __future__ import annotations

from collections.abc import Mapping

from rerankit._errors import ConfigurationError
from rerankit._types import RerankRequest, RerankResponse, RerankResult
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext
from rerankit.providers._bm25 import bm25_scores

__all__ = ["LocalProvider"]

_BM25 = ModelCapabilities(score_kind="unknown")
_THREAD_THRESHOLD = 200_000
"""Characters of input above which scoring moves to a worker thread, off the event loop."""


class LocalProvider(Provider):
    """Offline rerankers. ``local/bm25``: Okapi BM25 over the candidate documents.

    Options: ``k1`` (term-frequency saturation, default 1.5) and ``b`` (length normalisation,
    default 0.75).
    """

    name = "local"
    options = frozenset({"k1", "b"})
    example_model = "local/bm25"

    def capabilities(self, model: str) -> ModelCapabilities:
        return _BM25

    def model_table(self) -> Mapping[str, ModelCapabilities]:
        return {"bm25": _BM25}

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        if request.model != "bm25":
            raise ConfigurationError(
                f"unknown local model {request.model!r}; available: {', '.join(self.model_table())}"
            )
        if ctx.extra_body:
            ctx.unsupported("extra_body", instead="local models send no request")
        if ctx.extra_headers:
            ctx.unsupported("extra_headers", instead="local models send no request")
        k1 = _number(request.options.get("k1", 1.5), "k1")
        b = _number(request.options.get("b", 0.75), "b")
        if not 0 <= b <= 1:
            raise ConfigurationError(f"local/bm25 option b must be between 0 and 1, got {b}")
        size = len(request.query) + sum(map(len, request.documents))
        if size > _THREAD_THRESHOLD:
            import anyio.to_thread

            scores = await anyio.to_thread.run_sync(
                lambda: bm25_scores(request.query, request.documents, k1=k1, b=b)
            )
        else:
            scores = bm25_scores(request.query, request.documents, k1=k1, b=b)
        return RerankResponse(
            results=[RerankResult(index=i, relevance_score=s) for i, s in enumerate(scores)]
        )


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"local/bm25 option {name} must be a number >= 0, got {value!r}")
    return float(value)
