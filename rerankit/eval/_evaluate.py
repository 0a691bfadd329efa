"""``evaluate``: load the data, take the first stage's top k, rerank it with each model, measure."""

from __future__ import annotations

import asyncio
import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rerankit._errors import ConfigurationError
from rerankit._input import check_positive_int
from rerankit.eval._data import Dataset, load_dataset
from rerankit.eval._first_stage import candidates as first_stage
from rerankit.eval._metrics import metric_names, paired_p_value, per_query
from rerankit.eval._report import EvalReport, ModelReport
from rerankit.eval._run import ModelRun, run_model
from rerankit.eval._store import eval_cache

__all__ = ["ProgressFactory", "aevaluate", "evaluate"]

ProgressFactory = Callable[[str, int], Callable[[int, int], object] | None]
"""Called as ``on_model(model, queries)`` before each model runs; it may return an
``on_progress(done, total)`` callback for that model's queries."""

Data = Dataset | str | os.PathLike[str]


def evaluate(
    data: Data,
    models: Sequence[str],
    *,
    k: int = 100,
    run: str | os.PathLike[str] | None = None,
    split: str = "test",
    queries: str | os.PathLike[str] | None = None,
    qrels: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    cache: bool | str | os.PathLike[str] = True,
    requests_per_minute: float | None = None,
    concurrency: int = 8,
    providers: Mapping[str, Any] | None = None,
    on_model: ProgressFactory | None = None,
) -> EvalReport:
    """Rerank the first stage's top ``k`` with each of ``models`` and compare them.

    Args:
        data: a ``Dataset``, a BEIR folder, JSON Lines rows, or a TREC corpus (with
            ``queries`` and ``qrels``); see ``docs/eval.md``.
        models: model strings, e.g. ``["local/bm25", "cohere/rerank-v3.5"]``.
        k: candidates per query from the first stage.
        run: a TREC run file to take the candidates from (default: BM25 over the corpus).
        split: the BEIR qrels split (``qrels/<split>.tsv``).
        limit: evaluate only the first ``limit`` judged queries.
        cache: ``True`` for a SQLite cache per dataset and model in rerankit's cache folder,
            a path for one file, ``False`` for none. A rerun is answered from it.
        requests_per_minute: a quota for each model's provider.
        concurrency: queries in flight at once.
        providers: provider settings, as ``AsyncClient(providers=...)``.
        on_model: progress reporting (see ``ProgressFactory``).

    Raises ``ConfigurationError`` (``DataError`` for malformed files) before any model runs.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise ConfigurationError("evaluate() cannot run inside an event loop: await aevaluate()")
    return asyncio.run(
        aevaluate(
            data,
            models,
            k=k,
            run=run,
            split=split,
            queries=queries,
            qrels=qrels,
            limit=limit,
            cache=cache,
            requests_per_minute=requests_per_minute,
            concurrency=concurrency,
            providers=providers,
            on_model=on_model,
        )
    )


async def aevaluate(
    data: Data,
    models: Sequence[str],
    *,
    k: int = 100,
    run: str | os.PathLike[str] | None = None,
    split: str = "test",
    queries: str | os.PathLike[str] | None = None,
    qrels: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    cache: bool | str | os.PathLike[str] = True,
    requests_per_minute: float | None = None,
    concurrency: int = 8,
    providers: Mapping[str, Any] | None = None,
    on_model: ProgressFactory | None = None,
) -> EvalReport:
    """``evaluate``, awaitable (loading, BM25 and metrics run on a worker thread)."""
    from anyio import to_thread

    k = _check_k(k)
    limit = check_positive_int("limit", limit)
    _check_models(models)
    rpm = _check_rpm(requests_per_minute)
    dataset = await to_thread.run_sync(_load, data, split, queries, qrels, limit)
    stage, top = await to_thread.run_sync(first_stage, dataset, k, run)
    names = metric_names(k)
    baseline = await to_thread.run_sync(per_query, dataset.qrels, top, k)
    reports = []
    for model in models:
        store = None if cache is False else eval_cache(dataset.name, model, _path(cache))
        try:
            done = await run_model(
                model,
                dataset.queries,
                top,
                dataset.corpus,
                cache=store,
                providers=_with_quota(providers, model, rpm),
                concurrency=concurrency,
                on_progress=on_model(model, len(dataset.queries)) if on_model else None,
            )
        finally:
            if store is not None:
                await store.aclose()
        values = await to_thread.run_sync(per_query, dataset.qrels, done.rankings, k)
        reports.append(_model_report(model, done, values, baseline, len(dataset.queries)))
    return EvalReport(
        dataset=dataset.name,
        k=k,
        queries=len(dataset.queries),
        metric_names=names,
        first_stage=_summary(stage, baseline, len(dataset.queries)),
        models=reports,
    )


def _load(
    data: Data,
    split: str,
    queries: str | os.PathLike[str] | None,
    qrels: str | os.PathLike[str] | None,
    limit: int | None,
) -> Dataset:
    """The dataset, with only its first ``limit`` judged queries."""
    if not isinstance(data, Dataset):
        data = load_dataset(data, split=split, queries=queries, qrels=qrels)
    return _prepare(data, limit)


def _prepare(dataset: Dataset, limit: int | None) -> Dataset:
    if limit is None or limit >= len(dataset.queries):
        return dataset
    kept = dict(list(dataset.queries.items())[:limit])
    return Dataset(
        name=dataset.name,
        queries=kept,
        qrels={qid: dataset.qrels[qid] for qid in kept},
        corpus=dataset.corpus,
        candidates=None
        if dataset.candidates is None
        else {qid: dataset.candidates[qid] for qid in kept},
    )


def _summary(name: str, values: dict[str, dict[str, float]], queries: int) -> ModelReport:
    return ModelReport(model=name, queries=queries, metrics=_means(values), per_query=values)


def _model_report(
    model: str,
    done: ModelRun,
    values: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]],
    queries: int,
) -> ModelReport:
    latencies = sorted(value for value in done.latencies if value is not None)
    known = len(latencies) == len(done.latencies) and latencies
    report = _summary(model, values, queries)
    report.failed, report.error, report.from_cache = done.failed, done.error, done.from_cache
    if done.failed:  # the failed queries' rankings are missing: no figures until a rerun
        report.metrics, report.per_query = None, {}
    else:
        report.p_values = {
            name: paired_p_value(list(values[name].values()), list(baseline[name].values()))
            for name in values
        }
    if latencies:
        report.latency_p50_ms = _percentile(latencies, 50) * 1000
        report.latency_p95_ms = _percentile(latencies, 95) * 1000
    if known and sum(latencies) > 0:
        report.documents_per_second = done.documents / math.fsum(latencies)
    costs = done.costs
    if costs and all(cost is not None for cost in costs):
        report.cost_per_1k_queries = math.fsum(costs) / len(costs) * 1000  # type: ignore[arg-type]
    return report


def _means(values: dict[str, dict[str, float]]) -> dict[str, float]:
    return {name: math.fsum(v.values()) / len(v) if v else 0.0 for name, v in values.items()}


def _percentile(ordered: list[float], percent: int) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[percent - 1]


def _with_quota(
    providers: Mapping[str, Any] | None, model: str, rpm: float | None
) -> Mapping[str, Any] | None:
    if rpm is None:
        return providers
    merged = dict(providers or {})
    provider = model.split("/", 1)[0]
    settings = merged.get(provider) or {}
    if not isinstance(settings, Mapping):  # a ProviderSettings
        import msgspec

        settings = msgspec.structs.asdict(settings)
    merged[provider] = {**settings, "requests_per_minute": rpm}
    return merged


def _check_rpm(rpm: object) -> float | None:
    if rpm is None:
        return None
    if isinstance(rpm, bool) or not isinstance(rpm, (int, float)) or not 0 < rpm < math.inf:
        raise ConfigurationError(f"requests_per_minute must be a number > 0, got {rpm!r}")
    return float(rpm)


def _path(cache: bool | str | os.PathLike[str]) -> str | os.PathLike[str] | None:
    return None if cache is True else cache  # type: ignore[return-value]


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigurationError(f"k must be an int >= 1, got {k!r}")
    return k


def _check_models(models: object) -> None:
    if isinstance(models, str) or not isinstance(models, Sequence) or not models:
        raise ConfigurationError("models must be a non-empty list of model strings")
    if not all(isinstance(model, str) and model for model in models):
        raise ConfigurationError(f"models must be model strings, got {list(models)!r}")
