"""``rerankit eval``: models side by side on a dataset: quality, latency and cost."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from rerankit.cli._common import EXIT_ERROR, EXIT_OK, UsageError, error, positive_int, wrap
from rerankit.cli._progress import Progress

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "eval",
        help="compare rerankers on a dataset: quality, latency and cost",
        description=wrap(
            "Rerank the top K candidates of each judged query of DATA with every -m model and "
            "print nDCG@10, MRR@10, Recall@K and MAP (with a paired t-test against the first "
            "stage), latency per query, cost per 1,000 queries and documents per second. DATA "
            "is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv), a JSON Lines file "
            'of {"query", "documents", "relevant"} rows, or a corpus file with --queries and '
            "--qrels (TREC). The candidates come from --run, or from BM25 (bm25s) over the "
            "corpus. Answers are cached: a rerun costs nothing and an interrupted run resumes. "
            "Needs pip install 'rerankit[eval]' (in a checkout: pip install '.[eval]')."
        ),
        epilog=(
            "examples:\n"
            "  rerankit eval datasets/scifact -m local/bm25 -m cohere/rerank-v3.5 --k 100\n"
            "  rerankit eval corpus.tsv --queries topics.txt --qrels qrels.txt --run bm25.run \\\n"
            "      -m cohere/rerank-v3.5 --markdown --plot scifact.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", metavar="DATA", help="a BEIR folder, JSONL rows or a corpus file")
    parser.add_argument(
        "-m",
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="MODEL",
        help="provider/model to evaluate; repeat for several",
    )
    parser.add_argument(
        "--k", type=positive_int, default=100, help="candidates per query (default: 100)"
    )
    parser.add_argument("--run", metavar="FILE", help="a TREC run giving the candidates")
    parser.add_argument("--split", default="test", help="BEIR qrels split (default: test)")
    parser.add_argument("--queries", metavar="FILE", help="TREC: qid<TAB>text or topics file")
    parser.add_argument("--qrels", metavar="FILE", help="TREC: qrels file")
    parser.add_argument(
        "--limit", type=positive_int, metavar="N", help="evaluate only the first N queries"
    )
    _add_output_arguments(parser)


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """How the report is printed, cached and paced."""
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as JSON")
    output.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--plot", metavar="FILE", help="write quality vs latency and cost here")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache",
        metavar="PATH",
        help="the SQLite cache file (default: one per dataset and model in rerankit's cache)",
    )
    cache.add_argument("--no-cache", action="store_true", help="call every model afresh")
    parser.add_argument(
        "--rpm", type=positive_int, metavar="N", help="requests per minute per model's provider"
    )
    parser.add_argument(
        "-c", "--concurrency", type=positive_int, default=8, help="queries in flight (default: 8)"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on standard error (default: when it is a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    from rerankit._check import check_model
    from rerankit.eval import DataError, evaluate, plot

    for model in args.models:
        check_model(model, context="cli")  # unknown provider or missing key: before any work
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        report = evaluate(
            args.data,
            args.models,
            k=args.k,
            run=args.run,
            split=args.split,
            queries=args.queries,
            qrels=args.qrels,
            limit=args.limit,
            cache=False if args.no_cache else (args.cache or True),
            requests_per_minute=args.rpm,
            concurrency=args.concurrency,
            on_model=_progress if show else None,
        )
        if args.plot:
            plot(report, args.plot)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(report.to_json())
    else:
        print(report.markdown() if args.markdown else report.table())
    failed = [row for row in report.models if row.failed]
    for row in failed:
        error(f"{row.model}: {row.failed} queries failed; run the same command again to retry")
    return EXIT_ERROR if failed else EXIT_OK


def _progress(model: str, total: int) -> Callable[[int, int], object]:
    error(f"{model}:")
    bar = Progress(sys.stderr, total, unit="queries")

    def update(done: int, count: int) -> None:
        bar.update(done=1)
        if done == count:
            bar.close()

    return update
