"""Okapi BM25 over a set of candidate documents, in pure Python, with a Unicode-aware tokenizer."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

__all__ = ["bm25_scores", "tokenize"]

_IDEOGRAPHS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
"""Kana and Han characters: scripts written without spaces, so each character is a token."""

_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
    "\u0900-\u0dff\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff"
)
"""Combining marks and the Indic, Thai, Lao, Tibetan, Myanmar and Khmer blocks, which Python's
``\\w`` splits in mid-word at their vowel signs."""

_TOKEN = re.compile(f"[{_IDEOGRAPHS}]|(?:[^\\W_{_IDEOGRAPHS}]|[{_MARKS}])+")


def tokenize(text: str) -> list[str]:
    """Case-folded NFKC words; each Han or Kana character is a word of its own."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def bm25_scores(
    query: str, documents: Sequence[str], *, k1: float = 1.5, b: float = 0.75
) -> list[float]:
    """BM25 score of each document for ``query``, with IDF taken over ``documents`` themselves.

    IDF is ``ln(1 + (N - df + 0.5) / (df + 0.5))``, which is never negative.
    """
    query_terms = Counter(tokenize(query))
    doc_terms = [Counter(tokenize(doc)) for doc in documents]
    lengths = [sum(terms.values()) for terms in doc_terms]
    count = len(documents)
    average = sum(lengths) / count if count else 0.0
    if not query_terms or average == 0:
        return [0.0] * count
    idf = {}
    for term in query_terms:
        df = sum(1 for terms in doc_terms if term in terms)
        idf[term] = math.log(1 + (count - df + 0.5) / (df + 0.5))
    scores = []
    for terms, length in zip(doc_terms, lengths, strict=True):
        norm = k1 * (1 - b + b * length / average)
        score = 0.0
        for term, weight in query_terms.items():
            tf = terms.get(term)
            if tf:
                score += weight * idf[term] * tf * (k1 + 1) / (tf + norm)
        scores.append(score)
    return scores
