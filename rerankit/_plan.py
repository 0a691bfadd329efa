"""Turning provider results into the caller's ranking (pure functions).

Validation, the global sort (descending score, ties by ascending index), ``top_n`` and
back-filling the caller's documents happen here, once, for every provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from rerankit._errors import ResponseValidationError
from rerankit._types import Document, RerankResult

__all__ = ["finalize_results", "sort_key"]


def sort_key(result: RerankResult) -> tuple[float, int]:
    """Descending score, then ascending index."""
    return (-result.relevance_score, result.index)


_score = attrgetter("relevance_score")


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
    slots: list[RerankResult | None] = [None] * count
    found = 0
    for position, result in enumerate(results):
        if type(result) is not RerankResult and not isinstance(result, RerankResult):
            raise _invalid(provider, model, f"result {position} is not a RerankResult: {result!r}")
        index = result.index
        if type(index) is not int or not 0 <= index < count:
            raise _invalid(
                provider, model, f"result index {index!r} is out of range 0..{count - 1}"
            )
        if slots[index] is not None:
            raise _invalid(provider, model, f"document index {index} appears more than once")
        score = result.relevance_score
        if type(score) is not float:
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise _invalid(provider, model, f"score {score!r} of index {index} is not a number")
            result.relevance_score = score = float(score)
        if score - score != 0.0:  # inf or nan
            raise _invalid(provider, model, f"score {score!r} of index {index} is not finite")
        slots[index] = result
        found += 1
    if found != count and expect_all:
        raise _invalid(provider, model, f"no score for document index {slots.index(None)}")
    checked: list[RerankResult] = (
        slots if found == count else [r for r in slots if r is not None]  # type: ignore[assignment]
    )
    # ``checked`` is in ascending index order, and a stable sort keeps ties in that order.
    checked.sort(key=_score, reverse=True)
    if top_n is not None and top_n < len(checked):
        del checked[top_n:]
    if return_documents:
        for result in checked:
            doc = documents[result.index]
            result.document = {"text": doc} if isinstance(doc, str) else doc
    else:
        for result in checked:
            result.document = None
    return checked


def _invalid(provider: str, model: str, detail: str) -> ResponseValidationError:
    return ResponseValidationError(
        f"{provider} returned an invalid ranking for model {model!r}: {detail}",
        provider=provider,
        model=model,
    )
