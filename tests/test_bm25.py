"""The offline local/bm25 provider: tokenizer, scoring and the rerank call."""

from __future__ import annotations

import math

import pytest

import rerankit
from rerankit.providers._bm25 import bm25_scores, tokenize


def test_tokenizer_is_unicode_aware() -> None:
    assert tokenize("Hello, WORLD! It's 2024.") == ["hello", "world", "it", "s", "2024"]
    assert tokenize("Straße Ｆｕｌｌｗｉｄｔｈ") == ["strasse", "fullwidth"]
    assert tokenize("café naïve") == ["café", "naïve"]
    assert tokenize("東京タワー") == ["東", "京", "タ", "ワ", "ー"]
    assert tokenize("hindi हिन्दी भाषा") == ["hindi", "हिन्दी", "भाषा"]
    assert tokenize("snake_case") == ["snake", "case"]
    assert tokenize("  ,;  ") == []


def reference_bm25(query: str, docs: list[str], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Textbook Okapi BM25, written independently of the implementation."""
    tokenized = [tokenize(d) for d in docs]
    avgdl = sum(map(len, tokenized)) / len(docs)
    scores = []
    for tokens in tokenized:
        score = 0.0
        for term in tokenize(query):
            n = sum(term in t for t in tokenized)
            idf = math.log((len(docs) - n + 0.5) / (n + 0.5) + 1)
            f = tokens.count(term)
            score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(tokens) / avgdl))
        scores.append(score)
    return scores


def test_scores_match_the_textbook_formula() -> None:
    docs = [
        "the quick brown fox jumps over the lazy dog",
        "a quick brown dog",
        "foxes are quick and foxes are clever",
        "nothing relevant here at all",
        "fox fox fox",
    ]
    for query in ("quick fox", "lazy dog dog", "clever", "absent words"):
        assert bm25_scores(query, docs) == pytest.approx(reference_bm25(query, docs))
        assert bm25_scores(query, docs, k1=0.9, b=0.4) == pytest.approx(
            reference_bm25(query, docs, k1=0.9, b=0.4)
        )


def test_degenerate_inputs_score_zero() -> None:
    assert bm25_scores("...", ["a", "b"]) == [0.0, 0.0]
    assert bm25_scores("a", ["", "..."]) == [0.0, 0.0]
    assert bm25_scores("a", []) == []


def test_rare_terms_outweigh_common_ones() -> None:
    docs = ["common rare", "common", "common", "common other"]
    scores = bm25_scores("common rare", docs)
    assert scores[0] == max(scores)
    assert scores[1] == scores[2]


def test_rerank_call_orders_by_bm25_and_ties_by_index() -> None:
    docs = ["weather report", "reset your password here", "password", "weather report"]
    response = rerankit.rerank("local/bm25", "reset password", docs)
    expected = bm25_scores("reset password", docs)
    order = sorted(range(len(docs)), key=lambda i: (-expected[i], i))
    assert [r.index for r in response.results] == order
    assert [r.relevance_score for r in response.results] == [expected[i] for i in order]
    assert response.results[-2].index == 0
    assert response.results[-1].index == 3


def test_options_and_unknown_models() -> None:
    docs = ["a a a b", "a b b b"]
    plain = rerankit.rerank("local/bm25", "a", docs)
    tuned = rerankit.rerank("local/bm25", "a", docs, k1=0.1, b=0.0)
    assert [r.relevance_score for r in tuned.results] == pytest.approx(
        sorted(bm25_scores("a", docs, k1=0.1, b=0.0), reverse=True)
    )
    assert plain.results[0].relevance_score != tuned.results[0].relevance_score
    with pytest.raises(rerankit.ConfigurationError, match="option b must be between 0 and 1"):
        rerankit.rerank("local/bm25", "a", docs, b=2)
    with pytest.raises(rerankit.ConfigurationError, match="option k1 must be a number"):
        rerankit.rerank("local/bm25", "a", docs, k1="x")
    with pytest.raises(rerankit.ConfigurationError, match="unknown local model 'bm26'"):
        rerankit.rerank("local/bm26", "a", docs)
    with pytest.raises(rerankit.ConfigurationError, match="unknown argument 'k3'"):
        rerankit.rerank("local/bm25", "a", docs, k3=1)


@pytest.mark.anyio
async def test_large_inputs_score_off_the_event_loop() -> None:
    docs = [f"document number {i} about topic {i % 7}" for i in range(8_000)]
    response = await rerankit.arerank("local/bm25", "topic 3", docs, top_n=5)
    expected = bm25_scores("topic 3", docs)
    best = sorted(range(len(docs)), key=lambda i: (-expected[i], i))[:5]
    assert [r.index for r in response.results] == best
