"""Quality metrics from ``ir_measures`` (trec_eval's definitions) and a paired t-test (scipy).

Every ranking is given strictly decreasing scores from its order before it is measured, so the
libraries' different tie-breaking rules never apply; every judged query is measured (a query
without candidates scores 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from rerankit.eval._extra import import_extra

__all__ = ["METRICS", "metric_names", "paired_p_value", "per_query", "ranked_run"]

METRICS = ("nDCG@10", "MRR@10", "Recall@{k}", "MAP")
"""The report's metric names; ``Recall@{k}`` takes the number of candidates."""


def metric_names(k: int) -> list[str]:
    """The metric names for ``k`` candidates per query, in table order."""
    return [name.format(k=k) for name in METRICS]


def _measures(k: int) -> dict[str, Any]:
    """Report name -> ir_measures measure (trec_eval's ``ndcg_cut_10``, ``recall_k``, ``map``;
    RR cut at rank 10)."""
    ir_measures = _library()
    return {
        "nDCG@10": ir_measures.nDCG @ 10,
        "MRR@10": ir_measures.RR @ 10,
        f"Recall@{k}": ir_measures.R @ k,
        "MAP": ir_measures.AP,
    }


def ranked_run(rankings: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """Rankings (best first) as a run with strictly decreasing scores: ``n - position``."""
    return {
        qid: {docid: float(len(ids) - position) for position, docid in enumerate(ids)}
        for qid, ids in rankings.items()
    }


def per_query(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]], k: int
) -> dict[str, dict[str, float]]:
    """Each metric's value for each judged query (in ``qrels`` order): ``{name: {qid: v}}``."""
    measures = _measures(k)
    names = {measure: name for name, measure in measures.items()}
    run = {qid: scores for qid, scores in ranked_run(rankings).items() if scores}
    values: dict[str, dict[str, float]] = {name: dict.fromkeys(qrels, 0.0) for name in measures}
    for metric in _library().iter_calc(list(measures.values()), _plain(qrels), run):
        if metric.query_id in qrels:
            values[names[metric.measure]][metric.query_id] = float(metric.value)
    return values


def paired_p_value(model: Sequence[float], baseline: Sequence[float]) -> float | None:
    """The two-sided paired t-test's p-value (scipy ``ttest_rel``); ``None`` when undefined
    (fewer than two queries, or the per-query differences do not vary)."""
    if len({a - b for a, b in zip(model, baseline, strict=True)}) < 2:
        return None
    stats = import_extra("scipy.stats", "the significance test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly constant differences
        result = stats.ttest_rel(model, baseline)
    p = float(result.pvalue)
    return p if math.isfinite(p) else None


def _plain(qrels: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    return {qid: dict(grades) for qid, grades in qrels.items()}


def _library() -> Any:
    return import_extra("ir_measures", "measuring rankings")
