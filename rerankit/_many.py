"""Many queries in one go: bounded concurrency, order kept, errors per job."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from rerankit._errors import ConfigurationError, RerankitError
from rerankit._types import Document, RerankResponse

__all__ = ["ProgressCallback", "RerankJob", "job_arguments", "run_many", "to_jobs"]

logger = logging.getLogger("rerankit")

ProgressCallback = Callable[[int, int], object]
"""Called as ``on_progress(done, total)`` after each job ends, successfully or not."""


class RerankJob(msgspec.Struct, kw_only=True):
    """One query and its documents; ``top_n`` and ``user`` override the call's own, and
    ``metadata`` is merged over the call's (for hooks, as ``rerank``'s ``metadata=``)."""

    query: str
    documents: list[Document]
    top_n: int | None = None
    metadata: dict[str, Any] | None = None
    user: str | None = None


_JOB_KEYS = frozenset(RerankJob.__struct_fields__)


def to_jobs(jobs: Iterable[Any]) -> list[RerankJob | ConfigurationError]:
    """Jobs as ``RerankJob``, ``(query, documents[, top_n])`` or ``{"query", "documents"}``
    dicts (with ``top_n``, ``metadata`` and ``user`` when wanted); a malformed job becomes its
    ``ConfigurationError``, which is that job's result."""
    if isinstance(jobs, (str, bytes, Mapping)) or not isinstance(jobs, Iterable):
        raise ConfigurationError("jobs must be a list of (query, documents) pairs or dicts")
    return [_to_job(position, job) for position, job in enumerate(jobs)]


def _to_job(position: int, job: Any) -> RerankJob | ConfigurationError:
    if isinstance(job, RerankJob):
        return job
    if isinstance(job, Mapping) and "query" in job and "documents" in job:
        unknown = set(job) - _JOB_KEYS
        if unknown:
            return ConfigurationError(f"jobs[{position}] has unknown keys {sorted(unknown)}")
        return RerankJob(**job)
    if isinstance(job, Sequence) and not isinstance(job, (str, bytes)) and len(job) in (2, 3):
        return RerankJob(query=job[0], documents=job[1], top_n=job[2] if len(job) == 3 else None)
    return ConfigurationError(
        f"jobs[{position}] must be (query, documents), (query, documents, top_n), a dict "
        f"with 'query' and 'documents', or a RerankJob; got {type(job).__name__}"
    )


def job_arguments(job: RerankJob, call: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of one job's ``rerank``: the call's, with the job's own over them."""
    if job.metadata is None and job.user is None:
        return call
    arguments = dict(call)
    if job.metadata is not None:
        shared = call.get("metadata")
        arguments["metadata"] = (
            {**shared, **job.metadata} if isinstance(shared, Mapping) else job.metadata
        )
    if job.user is not None:
        arguments["user"] = job.user
    return arguments


async def run_many(
    jobs: list[RerankJob | ConfigurationError],
    call: Callable[[RerankJob], Awaitable[RerankResponse]],
    concurrency: int,
    on_progress: ProgressCallback | None = None,
) -> list[RerankResponse | RerankitError]:
    """Every job through ``call``, at most ``concurrency`` at once; results in job order.

    A job that fails with a ``RerankitError`` (or is one: a malformed job) gives that error in
    its place; the other jobs go on. Any other exception (a bug, a cancellation) cancels the
    rest and propagates.
    """
    results: list[RerankResponse | RerankitError | None] = [None] * len(jobs)
    pending = iter(range(len(jobs)))
    done = 0

    async def worker() -> None:
        nonlocal done
        for position in pending:
            job = jobs[position]
            try:
                results[position] = job if isinstance(job, RerankitError) else await call(job)
            except RerankitError as exc:
                results[position] = exc
            done += 1
            if on_progress is not None:
                try:
                    on_progress(done, len(jobs))
                except Exception:
                    logger.exception("the on_progress callback of rerank_many failed")

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(jobs)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return results  # type: ignore[return-value]
