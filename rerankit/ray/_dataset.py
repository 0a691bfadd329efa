"""``rerank_dataset``: a Ray Dataset of (query, documents) rows in, result columns added."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import pyarrow
import ray.data

from rerankit._client import AsyncClient
from rerankit._dispatch import resolve_model
from rerankit._errors import ConfigurationError
from rerankit._input import check_positive_int
from rerankit._lifetimes import PerLoop
from rerankit._settings import ProviderSettings, settings_map
from rerankit._types import RerankResponse
from rerankit.ray._quota import ClusterQuota

__all__ = ["RESULT_COLUMNS", "Reranker", "map_rerank", "rerank_dataset"]

RESULT_COLUMNS = (
    "rerank_indices",
    "rerank_scores",
    "rerank_documents",
    "rerank_cost",
    "rerank_error",
)
"""The columns ``rerank_dataset`` adds (``rerank_documents`` only with ``return_documents``)."""

HOSTED_CPUS = 0.25
"""CPUs an actor reserves for a hosted model: it mostly waits on the network."""


def rerank_dataset(
    ds: ray.data.Dataset,
    *,
    model: str,
    query_column: str = "query",
    documents_column: str = "documents",
    top_n: int | None = None,
    top_n_column: str | None = None,
    concurrency: int | tuple[int, int] | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    rows_in_flight: int = 32,
    batch_size: int = 32,
    num_cpus: float | None = None,
    client_options: Mapping[str, Any] | None = None,
    quota: ClusterQuota | None = None,
    return_documents: bool = False,
    runtime_env: Mapping[str, Any] | None = None,
    **call_options: Any,
) -> ray.data.Dataset:
    """Rerank every row of ``ds`` with ``model``, on a pool of Ray actors.

    Each actor holds one ``AsyncClient`` with up to ``rows_in_flight`` rows in flight. All
    actors share one quota (``ClusterQuota``: requests and tokens per minute, per provider and
    key, from ``requests_per_minute=`` / ``tokens_per_minute=`` or the provider's settings and
    published defaults); a ``Retry-After`` seen by any actor slows all.

    Args:
        ds: rows with a query (str) and documents (a list of str or dicts).
        model: the model string, as for ``rerank``.
        query_column, documents_column: where the query and documents are.
        top_n: keep only the best ``top_n`` of each row.
        top_n_column: a column whose value, when not null, overrides ``top_n`` for its row.
        concurrency: actors: ``n`` for a fixed pool, ``(min, max)`` to autoscale (default:
            Ray's autoscaling pool).
        requests_per_minute, tokens_per_minute: the quota of ``model``'s provider, for the
            whole cluster (replacing the provider settings' and published defaults).
        rows_in_flight: rows one actor reranks at once.
        batch_size: rows handed to an actor at a time.
        num_cpus: CPUs per actor (default: 1 for ``local/`` models, whose ONNX threads match
            it; 0.25 for hosted ones).
        client_options: ``AsyncClient`` arguments (``providers``, ``timeout``, ``retry``,
            ``fallbacks``, ...). API keys are best passed as environment variables through
            Ray's ``runtime_env``.
        quota: the shared quota (default: ``ClusterQuota()``, the actor ``rerankit-quota``).
        return_documents: add ``rerank_documents``, each result's document.
        runtime_env: Ray's ``runtime_env`` for the actors, e.g. ``{"env_vars": {...}}``.
        **call_options: anything ``rerank`` takes, for every row.

    Returns:
        ``ds`` with ``rerank_indices`` (document indices, best first), ``rerank_scores``,
        ``rerank_documents`` (when asked), ``rerank_cost`` (USD or null) and ``rerank_error``
        (null, or ``"<ErrorClass>: message"``; the other columns are then null). Lazy, as
        every Dataset: nothing runs until it is consumed.
    """
    return map_rerank(
        ds,
        Reranker,
        model=model,
        udf_options={"columns": (query_column, documents_column, top_n_column)},
        top_n=top_n,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        rows_in_flight=rows_in_flight,
        batch_size=batch_size,
        num_cpus=num_cpus,
        client_options=client_options,
        quota=quota,
        call_options={**call_options, "return_documents": return_documents},
        runtime_env=runtime_env,
    )


def map_rerank(
    ds: ray.data.Dataset,
    udf: type[Reranker],
    *,
    model: str,
    udf_options: dict[str, Any],
    top_n: int | None,
    concurrency: int | tuple[int, int] | None,
    requests_per_minute: float | None,
    tokens_per_minute: float | None,
    rows_in_flight: int,
    batch_size: int,
    num_cpus: float | None,
    client_options: Mapping[str, Any] | None,
    quota: ClusterQuota | None,
    call_options: dict[str, Any],
    runtime_env: Mapping[str, Any] | None = None,
) -> ray.data.Dataset:
    """``ds.map_batches`` with ``udf`` (a ``Reranker``) on an actor pool, arguments checked."""
    provider, _ = resolve_model(model, call_options.get("provider"))
    check_positive_int("top_n", top_n)
    rows = check_positive_int("rows_in_flight", rows_in_flight) or 32
    size = check_positive_int("batch_size", batch_size) or 32
    cpus = _num_cpus(num_cpus, provider)
    options = dict(client_options or {})
    if "quota" in options:
        raise ConfigurationError("client_options cannot set quota; pass quota= instead")
    options["providers"] = _provider_settings(
        options.get("providers"), provider, requests_per_minute, tokens_per_minute, cpus
    )
    quota = quota if quota is not None else ClusterQuota()
    quota.actor  # noqa: B018 - created here, owned by the driver, before any worker needs it
    return ds.map_batches(
        udf,
        batch_size=size,
        batch_format="pyarrow",
        compute=_compute(concurrency),
        num_cpus=cpus,
        runtime_env=None if runtime_env is None else dict(runtime_env),
        fn_constructor_kwargs={
            **udf_options,
            "model": model,
            "top_n": top_n,
            "rows_in_flight": rows,
            "client_options": options,
            "quota": quota,
            "call_options": call_options,
        },
    )


class Reranker:
    """The ``map_batches`` callable: one per actor, holding one ``AsyncClient``."""

    def __init__(
        self,
        *,
        model: str,
        top_n: int | None,
        rows_in_flight: int,
        client_options: dict[str, Any],
        quota: ClusterQuota,
        call_options: dict[str, Any],
        columns: tuple[str, str, str | None] = ("query", "documents", None),
    ) -> None:
        self._model = model
        self._query, self._documents, self._top_n_column = columns
        self._top_n = top_n
        self._call = call_options
        self._documents_wanted = bool(call_options.get("return_documents"))
        self._client = AsyncClient(**client_options, quota=quota)
        self._slots = PerLoop(lambda: asyncio.Semaphore(rows_in_flight))

    async def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        queries = batch.column(self._query).to_pylist()
        documents = batch.column(self._documents).to_pylist()
        cuts = (
            batch.column(self._top_n_column).to_pylist()
            if self._top_n_column
            else [None] * len(queries)
        )
        answers = await self.rerank_rows(zip(queries, documents, cuts, strict=True))
        for name, values in result_columns(answers, documents=self._documents_wanted).items():
            batch = batch.append_column(name, pyarrow.array(values, type=_TYPES.get(name)))
        return batch

    async def rerank_rows(
        self, rows: Iterable[tuple[object, object, object]]
    ) -> list[RerankResponse | Exception]:
        """Each ``(query, documents, top_n)`` reranked (``top_n`` ``None``: the job's), in
        order: its response, or the exception it failed with."""
        return list(await asyncio.gather(*(self._one(*row) for row in rows)))

    async def _one(
        self, query: object, documents: object, cut: object
    ) -> RerankResponse | Exception:
        top_n = self._top_n if cut is None else cut
        async with self._slots.get():
            try:
                return await self._client.rerank(
                    self._model,
                    query,  # type: ignore[arg-type]  # checked by rerank
                    documents,  # type: ignore[arg-type]
                    top_n=top_n,  # type: ignore[arg-type]
                    **self._call,
                )
            except Exception as exc:  # a RerankitError, or a bug: the row fails, not the job
                return exc


_TYPES = {
    "rerank_indices": pyarrow.list_(pyarrow.int64()),
    "rerank_scores": pyarrow.list_(pyarrow.float64()),
    "rerank_cost": pyarrow.float64(),
    "rerank_error": pyarrow.string(),
}


def result_columns(
    answers: Sequence[RerankResponse | Exception], *, documents: bool
) -> dict[str, list[Any]]:
    """The result columns of rows answered with ``answers`` (a response or an error each)."""
    columns: dict[str, list[Any]] = {name: [] for name in RESULT_COLUMNS}
    if not documents:
        del columns["rerank_documents"]
    for answer in answers:
        if isinstance(answer, Exception):
            values: dict[str, Any] = dict.fromkeys(columns)
            values["rerank_error"] = f"{type(answer).__name__}: {answer}"
        else:
            values = {
                "rerank_indices": [r.index for r in answer.results],
                "rerank_scores": [r.relevance_score for r in answer.results],
                "rerank_cost": answer.cost,
                "rerank_error": None,
            }
            if documents:
                values["rerank_documents"] = [_builtin(r.document) for r in answer.results]
        for name, column in columns.items():
            column.append(values[name])
    return columns


def _builtin(document: object) -> Any:
    if isinstance(document, dict) and set(document) == {"text"}:
        return document["text"]
    return msgspec.to_builtins(document)


def _num_cpus(num_cpus: float | None, provider: str) -> float:
    if num_cpus is None:
        return 1.0 if provider == "local" else HOSTED_CPUS
    if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or num_cpus <= 0:
        raise ConfigurationError(f"num_cpus must be a number > 0, got {num_cpus!r}")
    return float(num_cpus)


def _compute(concurrency: object) -> ray.data.ActorPoolStrategy:
    if concurrency is None:
        return ray.data.ActorPoolStrategy()
    if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        return ray.data.ActorPoolStrategy(size=concurrency)
    if (
        isinstance(concurrency, tuple)
        and len(concurrency) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in concurrency)
        and 1 <= concurrency[0] <= concurrency[1]
    ):
        return ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    raise ConfigurationError(
        f"concurrency must be an int >= 1 or a (min, max) pair of actors, got {concurrency!r}"
    )


def _provider_settings(
    providers: object,
    provider: str,
    requests_per_minute: float | None,
    tokens_per_minute: float | None,
    cpus: float,
) -> dict[str, ProviderSettings]:
    """The client's provider settings with the job's quota, and local ONNX threads = CPUs."""
    settings = dict(settings_map(providers))
    limits = {
        name: value
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        )
        if value is not None
    }
    if limits:
        current = settings.get(provider, ProviderSettings())
        settings[provider] = ProviderSettings(**{**msgspec.structs.asdict(current), **limits})
    if provider == "local":
        current = settings.get("local", ProviderSettings())
        if "threads" not in current.options:
            options = {**current.options, "threads": max(1, int(cpus))}
            settings["local"] = msgspec.structs.replace(current, options=options)
    return settings
