"""``rerankit batch --ray``: the same JSON Lines job on a Ray cluster, with one shared quota.

The driver reads the input, writes error lines for invalid jobs and skips finished ones (as
without Ray); the jobs to run become a Dataset of ``{"line", "job"}`` rows, reranked by
``JobLines`` actors that turn each into its output line. The driver writes the lines as they
arrive, so an interrupted run resumes the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import BinaryIO

import msgspec
import pyarrow
import ray
import ray.data

from rerankit._dispatch import resolve_model
from rerankit._registry import load_provider
from rerankit.cli._batch import Writer, accepted_jobs
from rerankit.cli._jobs import Job, JobKey, error_line, success_line
from rerankit.cli._progress import Progress
from rerankit.ray._dataset import Reranker, map_rerank

__all__ = ["JobLines", "run_on_ray"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Job).decode


def run_on_ray(
    lines: Iterable[bytes],
    out: BinaryIO,
    model: str,
    *,
    address: str | None,
    actors: int | None,
    concurrency: int,
    top_n: int | None,
    return_documents: bool,
    done: set[JobKey],
    progress: Progress | None,
) -> int:
    """Rerank the jobs of ``lines`` on Ray (joining ``address``, or Ray already started in
    this process, or a local Ray); writes each result line to ``out``. Returns the failures."""
    write = Writer(out, progress)
    rows = [
        {"line": number, "job": _encode(job)} for number, job in accepted_jobs(lines, done, write)
    ]
    if not rows:
        return write.failed
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = map_rerank(
            ray.data.from_items(rows),
            JobLines,
            model=model,
            udf_options={},
            top_n=top_n,
            concurrency=actors,
            requests_per_minute=None,
            tokens_per_minute=None,
            rows_in_flight=concurrency,
            batch_size=max(1, min(32, len(rows) // 4)),
            num_cpus=None,
            client_options=None,
            quota=None,
            call_options={"return_documents": return_documents},
            runtime_env={"env_vars": provider_env(model)},
        )
        for row in ds.iter_rows():
            write(row["output"], ok=row["ok"])
    finally:
        if started:
            ray.shutdown()
    return write.failed


def provider_env(model: str) -> dict[str, str]:
    """The environment variables set here that give ``model``'s provider its key and base URL,
    for the workers (which may run on other machines)."""
    cls = load_provider(resolve_model(model)[0])
    names = (*cls.api_key_env, *cls.api_base_env)
    return {name: os.environ[name] for name in names if os.environ.get(name)}


class JobLines(Reranker):
    """Reranks ``{"line", "job"}`` rows into ``{"output", "ok"}``: each job's result line."""

    async def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        numbers = batch.column("line").to_pylist()
        jobs = [_decode(raw) for raw in batch.column("job").to_pylist()]
        answers = await self.rerank_rows((job.query, job.documents, job.top_n) for job in jobs)
        outputs = [
            error_line(number, job.id, answer)
            if isinstance(answer, Exception)
            else success_line(number, job.id, answer)
            for number, job, answer in zip(numbers, jobs, answers, strict=True)
        ]
        ok = [not isinstance(answer, Exception) for answer in answers]
        return pyarrow.table({"output": pyarrow.array(outputs, pyarrow.binary()), "ok": ok})
