"""``rerankit batch``: JSON Lines of jobs in, JSON Lines of results out; resumable."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rerankit.cli._common import (
    DEFAULT_MODEL,
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    error,
    positive_int,
    wrap,
)
from rerankit.cli._jobs import (
    InvalidJob,
    Job,
    JobKey,
    error_line,
    job_key,
    parse_job,
    success_line,
)
from rerankit.cli._progress import Progress
from rerankit.cli._resume import resume

__all__ = ["Writer", "accepted_jobs", "add_parser", "run", "run_jobs"]


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "batch",
        help="rerank many queries: JSON Lines of jobs in, JSON Lines of results out",
        description=wrap(
            'Rerank every job of INPUT, a JSON Lines file of {"query": ..., "documents": [...]} '
            'objects (optionally with "top_n" and an "id"); - reads standard input. One result '
            "line is written per job as it finishes, with the job's line number and id. "
            "Re-running with the same --output skips the jobs it already holds results for and "
            "runs failed ones again. With --ray, the jobs run on a Ray cluster (the ray extra), "
            "with the same output and one rate-limit quota for all its workers."
        ),
        epilog=(
            "examples:\n  rerankit batch jobs.jsonl -o results.jsonl\n"
            "  rerankit batch -m cohere/rerank-v3.5 -c 16 --progress jobs.jsonl -o out.jsonl\n"
            "  rerankit batch --ray --actors 4 -m cohere/rerank-v3.5 jobs.jsonl -o out.jsonl"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input", metavar="INPUT", help="jobs, one JSON object per line; - for stdin"
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default="-",
        help="where results go (default: standard output); an existing file is resumed",
    )
    parser.add_argument(
        "-m", "--model", default=DEFAULT_MODEL, help=f"provider/model (default: {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "-n", "--top-n", type=positive_int, default=None, help="keep the best N (unless a job says)"
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        type=positive_int,
        default=8,
        help="jobs in flight at once (default: 8); with --ray, per actor",
    )
    _add_ray_arguments(parser)
    parser.add_argument(
        "--documents",
        action="store_true",
        help="include each result's document in the output (default: index and score only)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on standard error (default: when it is a terminal)",
    )


def _add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        nargs="?",
        const="",
        default=None,
        help="run on Ray: the cluster at ADDRESS (e.g. auto, ray://host:10001), or a local "
        "Ray started for this run when no address is given",
    )
    parser.add_argument(
        "--actors",
        type=positive_int,
        default=None,
        help="with --ray: this many actors (default: as many as Ray's autoscaling gives)",
    )


def run(args: argparse.Namespace) -> int:
    from rerankit._check import check_model

    output = None if args.output == "-" else Path(args.output)
    source = None if args.input == "-" else Path(args.input)
    if source is not None and not source.is_file():
        raise UsageError(f"cannot read {source}: no such file")
    if source is not None and output is not None and output.exists() and source.samefile(output):
        raise UsageError("the output file is the input file; choose another --output")
    if args.actors is not None and args.ray is None:
        raise UsageError("--actors needs --ray")
    run_on_ray = _ray_runner() if args.ray is not None else None
    check_model(args.model, context="cli")  # unknown provider or missing key: before any job
    resumed = resume(output) if output is not None else None
    if resumed is not None and resumed.done:
        again = f"; {resumed.retried} failed jobs run again" if resumed.retried else ""
        error(f"resuming {output}: {len(resumed.done)} jobs already done{again}")
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    progress = Progress(sys.stderr, _count(source)) if show else None
    try:
        with _open_output(output) as out:
            done = resumed.done if resumed is not None else set()
            if run_on_ray is not None:
                failed = run_on_ray(
                    _lines(source),
                    out,
                    args.model,
                    address=args.ray or None,
                    actors=args.actors,
                    concurrency=args.concurrency,
                    top_n=args.top_n,
                    return_documents=args.documents,
                    done=done,
                    progress=progress,
                )
            else:
                failed = asyncio.run(
                    run_jobs(
                        _lines(source),
                        out,
                        args.model,
                        concurrency=args.concurrency,
                        top_n=args.top_n,
                        return_documents=args.documents,
                        done=done,
                        progress=progress,
                    )
                )
    finally:
        if progress is not None:
            progress.close()
    if failed:
        where = args.output if output is not None else "the output"
        error(f"{failed} jobs failed; their error lines are in {where}")
        return EXIT_ERROR
    return EXIT_OK


async def run_jobs(
    lines: Iterable[bytes],
    out: BinaryIO,
    model: str,
    *,
    concurrency: int = 8,
    top_n: int | None = None,
    return_documents: bool = False,
    done: set[JobKey] | None = None,
    progress: Progress | None = None,
) -> int:
    """Rerank the job on each line, ``concurrency`` at a time, writing each result line to
    ``out`` as it finishes; jobs whose key is in ``done`` are skipped. Returns the failures."""
    from rerankit._client import AsyncClient

    queue: asyncio.Queue[tuple[int, Job] | None] = asyncio.Queue(maxsize=2 * concurrency)
    write = Writer(out, progress)

    async def worker(client: AsyncClient) -> None:
        while (item := await queue.get()) is not None:
            number, job = item
            try:
                response = await client.rerank(
                    model,
                    job.query,
                    job.documents,
                    top_n=job.top_n if job.top_n is not None else top_n,
                    return_documents=return_documents,
                )
            except Exception as exc:  # RerankitError, or a bug: either way the job failed
                write(error_line(number, job.id, exc), ok=False)
            else:
                write(success_line(number, job.id, response), ok=True)

    async with AsyncClient() as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        try:
            for item in accepted_jobs(lines, done or set(), write):
                await queue.put(item)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    return write.failed


class Writer:
    """Writes result lines to ``out`` as they come (flushed: a rerun resumes from them),
    counting failures and moving the progress bar."""

    def __init__(self, out: BinaryIO, progress: Progress | None) -> None:
        self.out = out
        self.progress = progress
        self.failed = 0

    def __call__(self, record: bytes, *, ok: bool) -> None:
        self.out.write(record)
        self.out.flush()
        self.failed += not ok
        if self.progress is not None:
            self.progress.update(done=1, failed=int(not ok))


def accepted_jobs(
    lines: Iterable[bytes], done: set[JobKey], write: Writer
) -> Iterator[tuple[int, Job]]:
    """The jobs to run, with their line numbers: invalid and duplicate ones get their error
    line written instead, and those in ``done`` are skipped."""
    seen: set[JobKey] = set()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            job = parse_job(raw)
        except InvalidJob as exc:
            write(error_line(number, exc.job_id, exc), ok=False)
            continue
        key = job_key(job.id, number)
        if key in seen:
            duplicate = InvalidJob(f"invalid job: duplicate id {job.id!r}")
            write(error_line(number, job.id, duplicate), ok=False)
            continue
        seen.add(key)
        if key in done:
            if write.progress is not None:
                write.progress.update(skipped=1)
            continue
        yield number, job


def _ray_runner() -> Any:
    """``run_on_ray``, or a ``UsageError`` when Ray is not installed."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        from rerankit._install import install_hint

        raise UsageError(f"--ray needs Ray: {install_hint('ray')}")
    from rerankit.cli._ray_batch import run_on_ray

    return run_on_ray


def _lines(source: Path | None) -> Iterator[bytes]:
    if source is None:
        yield from sys.stdin.buffer.read().splitlines()
        return
    try:
        with source.open("rb") as handle:
            yield from handle
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from None


def _count(source: Path | None) -> int | None:
    """Jobs in the input, for the progress bar (``None`` for standard input)."""
    if source is None:
        return None
    try:
        with source.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


@contextlib.contextmanager
def _open_output(path: Path | None) -> Iterator[BinaryIO]:
    """Standard output, or ``path`` opened for appending (results of earlier runs stay)."""
    if path is None:
        yield sys.stdout.buffer
        return
    try:
        handle = path.open("ab")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    with handle:
        yield handle
