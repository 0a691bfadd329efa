"""Turning provider results into the caller's ranking (pure functions).

Validation, the global sort (descending score, ties by ascending index), ``top_n`` and
back-filling the caller's documents happen here, once, for every provider.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rerankit._errors import ResponseValidationError
from rerankit._types import Document, RerankResult

__all__ = ["finalize_results", "sort_key"]


def sort_key(result: RerankResult) -> tuple[float, int]:
    """Descending score, then ascending index."""
    return (-result.relevance_score, result.index)


def finalize_results(
    results: Sequence[RerankResult],
    documents: Sequence[Document],
    *,
    top_n: int | None,
    return_documents: bool,
    provider: str,
    model: str,
    expect_all: bool = False,
) -> list[RerankResult]:
    """Validate, sort, cut and back-fill ``results`` for ``documents`` as the caller passed them.

    Raises ``ResponseValidationError`` for a result that is not a ``RerankResult``, an index out
    of range or repeated, or a score that is not a finite number; with ``expect_all``, also when
    a document has no result.
    """
    count = len(documents)
    seen = bytearray(count)
    checked: list[RerankResult] = []
    for position, result in enumerate(results):
        if not isinstance(result, RerankResult):
            raise _invalid(provider, model, f"result {position} is not a RerankResult: {result!r}")
        index, score = result.index, result.relevance_score
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise _invalid(
                provider, model, f"result index {index!r} is out of range 0..{count - 1}"
            )
        if seen[index]:
            raise _invalid(provider, model, f"document index {index} appears more than once")
        seen[index] = 1
        if type(score) is not float:
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise _invalid(provider, model, f"score {score!r} of index {index} is not a number")
            result.relevance_score = score = float(score)
        if not math.isfinite(score):
            raise _invalid(provider, model, f"score {score!r} of index {index} is not finite")
        checked.append(result)
    if expect_all and len(checked) != count:
        missing = seen.find(0)
        raise _invalid(provider, model, f"no score for document index {missing}")
    checked.sort(key=sort_key)
    if top_n is not None and top_n < len(checked):
        del checked[top_n:]
    for result in checked:
        if return_documents:
            doc = documents[result.index]
            result.document = {"text": doc} if isinstance(doc, str) else doc
        else:
            result.document = None
    return checked


def _invalid(provider: str, model: str, detail: str) -> ResponseValidationError:
    return ResponseValidationError(
        f"{provider} returned an invalid ranking for model {model!r}: {detail}",
        provider=provider,
        model=model,
    )
