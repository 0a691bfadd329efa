"""``--plot``: quality against latency and against cost, one point per model (matplotlib)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rerankit.eval._data import DataError
from rerankit.eval._extra import import_extra
from rerankit.eval._report import SIGNIFICANCE_METRIC, EvalReport, ModelReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot"]


def plot(report: EvalReport, path: str | os.PathLike[str]) -> None:
    """Write a two-panel figure (nDCG@10 against p50 latency, and against cost per 1,000
    queries) to ``path``; the format follows its extension (``.png``, ``.svg``, ``.pdf``).
    The first stage is a dashed line; a model without a latency or a price is left out of that
    panel."""
    figure = import_extra("matplotlib.figure", "plotting").Figure(
        figsize=(11, 4.5), layout="constrained"
    )
    latency, cost = figure.subplots(1, 2)
    _panel(latency, report, "latency_p50_ms", "latency per query, p50 (ms)")
    _panel(cost, report, "cost_per_1k_queries", "cost per 1,000 queries (USD)")
    figure.suptitle(f"{report.dataset}: top {report.k} of {report.first_stage.model} reranked")
    try:
        figure.savefig(os.fspath(path), dpi=120)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write the plot {os.fspath(path)!r}: {exc}") from None


def _panel(axes: Axes, report: EvalReport, field: str, label: str) -> None:
    baseline = _quality(report.first_stage)
    if baseline is not None:
        axes.axhline(baseline, linestyle="--", color="grey", label=report.first_stage.model)
    points = [
        (row.model, x, y)
        for row in report.models
        if (x := getattr(row, field)) is not None and (y := _quality(row)) is not None
    ]
    for model, x, y in points:
        axes.scatter([x], [y])
        axes.annotate(model, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if not points:
        axes.text(0.5, 0.5, "not known for any model", ha="center", transform=axes.transAxes)
    axes.set_xlabel(label)
    axes.set_ylabel(SIGNIFICANCE_METRIC)
    if baseline is not None:
        axes.legend(loc="lower right", fontsize=8)
    axes.grid(alpha=0.3)


def _quality(row: ModelReport) -> float | None:
    return None if row.metrics is None else row.metrics.get(SIGNIFICANCE_METRIC)
