"""Validation, sorting, cutting and back-filling of provider results (property tests)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankit import RerankResult, ResponseValidationError
from rerankit._plan import finalize_results

scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.sampled_from(
    [0.0, 0.5, 1.0]
)


@given(
    st.lists(scores, max_size=60), st.none() | st.integers(min_value=1, max_value=80), st.randoms()
)
def test_any_provider_order_gives_one_sorted_ranking(
    values: list[float], top_n: int | None, rnd: Any
) -> None:
    docs = [f"doc {i}" for i in range(len(values))]
    results = [RerankResult(index=i, relevance_score=s) for i, s in enumerate(values)]
    rnd.shuffle(results)
    ranked = finalize_results(
        results, docs, top_n=top_n, return_documents=True, provider="p", model="m"
    )
    expected = sorted(range(len(values)), key=lambda i: (-values[i], i))[:top_n]
    assert [r.index for r in ranked] == expected
    assert [r.document for r in ranked] == [{"text": docs[i]} for i in expected]
    assert len({r.index for r in ranked}) == len(ranked)


def test_documents_can_be_left_out_and_echoes_are_dropped() -> None:
    results = [RerankResult(index=0, relevance_score=1, document={"text": "provider echo"})]
    ranked = finalize_results(
        results, ["mine"], top_n=None, return_documents=False, provider="p", model="m"
    )
    assert ranked[0].document is None
    assert ranked[0].relevance_score == 1.0
    assert type(ranked[0].relevance_score) is float


@pytest.mark.parametrize(
    ("results", "problem"),
    [
        ([RerankResult(index=2, relevance_score=0.1)], "out of range"),
        ([RerankResult(index=True, relevance_score=0.1)], "out of range"),
        ([RerankResult(index=0, relevance_score=float("inf"))], "not finite"),
        ([RerankResult(index=0, relevance_score="1")], "not a number"),  # type: ignore[arg-type]
        ([{"index": 0, "relevance_score": 1.0}], "not a RerankResult"),
        (None, "results is a NoneType, not a list"),
        ({"index": 0}, "results is a dict, not a list"),
        ([RerankResult(index=0, relevance_score=1.0)] * 2, "appears more than once"),
        ([RerankResult(index=0, relevance_score=float("nan"))], "not finite"),
    ],
)
def test_invalid_results(results: list[Any], problem: str) -> None:
    with pytest.raises(ResponseValidationError, match=problem):
        finalize_results(
            results, ["a", "b"], top_n=None, return_documents=True, provider="p", model="m"
        )


def test_missing_results_when_all_are_expected() -> None:
    with pytest.raises(ResponseValidationError, match="no score for document index 1"):
        finalize_results(
            [RerankResult(index=0, relevance_score=1.0)],
            ["a", "b"],
            top_n=None,
            return_documents=True,
            provider="p",
            model="m",
            expect_all=True,
        )
