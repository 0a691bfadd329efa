"""The candidates every model reranks: the data's own, a TREC run's top k, or BM25's (bm25s)."""

from __future__ import annotations

import os
from pathlib import Path

from rerankit.eval._data import DataError, Dataset, read_trec_run
from rerankit.eval._extra import import_extra

__all__ = ["FIRST_STAGE_BM25", "candidates"]

FIRST_STAGE_BM25 = "bm25s"
"""The first stage's name when BM25 over the corpus gives the candidates."""


def candidates(
    dataset: Dataset, k: int, run: str | os.PathLike[str] | None = None
) -> tuple[str, dict[str, list[str]]]:
    """The first stage's name and each query's top ``k`` document ids, best first."""
    if run is not None:
        if dataset.candidates is not None:
            raise DataError("run= cannot be combined with rows that list their own documents")
        return f"run:{Path(run).name}", _from_run(dataset, Path(run), k)
    if dataset.candidates is not None:
        return "given order", {qid: ids[:k] for qid, ids in dataset.candidates.items()}
    return FIRST_STAGE_BM25, bm25_candidates(dataset, k)


def _from_run(dataset: Dataset, path: Path, k: int) -> dict[str, list[str]]:
    ranked = read_trec_run(path)
    top: dict[str, list[str]] = {}
    for qid in dataset.queries:
        ids = [docid for docid, _ in ranked.get(qid, [])[:k]]
        unknown = [docid for docid in ids if docid not in dataset.corpus]
        if unknown:
            raise DataError(f"{path}: documents of query {qid!r} not in the corpus: {unknown[:5]}")
        top[qid] = ids
    return top


def bm25_candidates(dataset: Dataset, k: int) -> dict[str, list[str]]:
    """BM25 (bm25s: Lucene's variant, k1=1.5, b=0.75, English stopwords, no stemming) over the
    whole corpus; documents matching no query term are left out."""
    bm25s = import_extra("bm25s", "BM25 retrieval (without a run file)")
    ids = list(dataset.corpus)
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(list(dataset.corpus.values()), stopwords="en", show_progress=False),
        show_progress=False,
    )
    queries = list(dataset.queries)
    tokens = bm25s.tokenize(
        [dataset.queries[qid] for qid in queries], stopwords="en", show_progress=False
    )
    found, scores = retriever.retrieve(tokens, k=min(k, len(ids)), show_progress=False)
    return {
        qid: [ids[int(index)] for index, score in zip(row, row_scores, strict=True) if score > 0]
        for qid, row, row_scores in zip(queries, found, scores, strict=True)
    }
