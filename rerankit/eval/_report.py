"""The evaluation report: typed, and as a terminal table, Markdown or JSON."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["EvalReport", "ModelReport"]

SIGNIFICANCE_METRIC = "nDCG@10"
"""The metric whose paired p-value the table shows."""


class ModelReport(msgspec.Struct, kw_only=True):
    """One model's (or the first stage's) results.

    ``metrics`` maps a metric name (``nDCG@10``, ``MRR@10``, ``Recall@<k>``, ``MAP``) to its
    mean over the judged queries; ``None`` when some queries failed (run again: answers already
    received come from the cache). ``p_values`` are the paired t-test's against the first stage,
    per metric. Latencies are per query; ``documents_per_second`` is documents reranked over the
    sum of those latencies; ``cost_per_1k_queries`` is ``None`` when a price is unknown.
    """

    model: str
    queries: int
    metrics: dict[str, float] | None
    p_values: dict[str, float | None] = msgspec.field(default_factory=dict)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    cost_per_1k_queries: float | None = None
    documents_per_second: float | None = None
    failed: int = 0
    error: str | None = None
    from_cache: int = 0
    per_query: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    """Each metric's value per query id (for your own analysis; not in ``to_dict``)."""

    def to_dict(self) -> dict[str, Any]:
        """Metric names as keys (``"nDCG@10"``...), then ``p_value`` (nDCG@10's) and the rest."""
        out: dict[str, Any] = dict(self.metrics or {})
        out["p_value"] = self.p_values.get(SIGNIFICANCE_METRIC)
        out["p_values"] = dict(self.p_values)
        for field in (
            "latency_p50_ms",
            "latency_p95_ms",
            "cost_per_1k_queries",
            "documents_per_second",
            "queries",
            "failed",
            "from_cache",
            "error",
        ):
            out[field] = getattr(self, field)
        return out


class EvalReport(msgspec.Struct, kw_only=True):
    """``rerankit.eval.evaluate``'s answer: the first stage and each model, side by side."""

    dataset: str
    k: int
    queries: int
    metric_names: list[str]
    first_stage: ModelReport
    models: list[ModelReport]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: one object per model under its model string (first stage first)."""
        rows = [self.first_stage, *self.models]
        return {
            "dataset": self.dataset,
            "k": self.k,
            "queries": self.queries,
            "first_stage": self.first_stage.model,
            "models": {row.model: row.to_dict() for row in rows},
        }

    def to_json(self) -> str:
        return msgspec.json.format(msgspec.json.encode(self.to_dict()).decode(), indent=2)

    def table(self) -> str:
        """A plain-text table, columns aligned."""
        header, rows = self._cells()
        widths = [max(len(line[i]) for line in (header, *rows)) for i in range(len(header))]
        lines = [_align(header, widths), "  ".join("-" * width for width in widths)]
        lines += [_align(row, widths) for row in rows]
        return "\n".join([self._title(), "", *lines, *self._notes()])

    def markdown(self) -> str:
        """A Markdown table."""
        header, rows = self._cells()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join([f"**{self._title()}**", "", *lines, *self._notes()])

    def _title(self) -> str:
        return (
            f"{self.dataset}: {self.queries} queries, top {self.k} of {self.first_stage.model} "
            "reranked"
        )

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["model", *self.metric_names, f"p ({SIGNIFICANCE_METRIC})"]
        header += ["p50 ms", "p95 ms", "$/1k queries", "docs/s"]
        rows = []
        for row in (self.first_stage, *self.models):
            metrics = row.metrics or {}
            cells = [row.model, *(_number(metrics.get(name), 4) for name in self.metric_names)]
            cells.append(_p(row.p_values.get(SIGNIFICANCE_METRIC), row is self.first_stage))
            cells += [_milliseconds(row.latency_p50_ms), _milliseconds(row.latency_p95_ms)]
            cells += [_number(row.cost_per_1k_queries, 4), _number(row.documents_per_second, 0)]
            rows.append(cells)
        return header, rows

    def _notes(self) -> list[str]:
        notes = [
            f"{row.model}: {row.failed} queries failed ({row.error}); run again to retry them"
            for row in self.models
            if row.failed
        ]
        return ["", *notes] if notes else []


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _milliseconds(value: float | None) -> str:
    """Two decimals below 10 ms (local models answer in fractions of one), else whole ms."""
    return _number(value, 2 if value is not None and value < 10 else 0)


def _p(value: float | None, baseline: bool) -> str:
    if baseline or value is None:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _align(cells: list[str], widths: list[int]) -> str:
    first = cells[0].ljust(widths[0])
    rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
    return "  ".join([first, *rest]).rstrip()
