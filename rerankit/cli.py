"""The ``rerankit`` command: ``rerankit rerank --query "..." FILE...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import msgspec

from rerankit._errors import RerankitError
from rerankit._types import RerankResponse

__all__ = ["main"]

DEFAULT_MODEL = "local/bm25"
"""The embedded default: offline, no API key."""

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerankit",
        description="Rerank documents by relevance to a query, over any rerank API or offline.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    rerank = commands.add_parser(
        "rerank",
        help="rank the lines of files by relevance to a query",
        description=(
            "Rank documents, one per line of each FILE ('-' reads stdin), by relevance to a "
            f"query. The default model, {DEFAULT_MODEL}, runs offline with no API key."
        ),
    )
    rerank.add_argument(
        "files", nargs="+", metavar="FILE", help="documents, one per line; - for stdin"
    )
    rerank.add_argument("-q", "--query", required=True, help="the search query")
    rerank.add_argument(
        "-m", "--model", default=DEFAULT_MODEL, help=f"provider/model (default: {DEFAULT_MODEL})"
    )
    rerank.add_argument(
        "-n", "--top-n", type=_positive_int, default=None, help="show only the best N"
    )
    rerank.add_argument("--json", action="store_true", help="print the response as JSON")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _read_documents(paths: Sequence[str], stdin: TextIO) -> list[str]:
    documents: list[str] = []
    for path in paths:
        if path == "-":
            lines = stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        documents.extend(line for line in lines if line.strip())
    return documents


def _print_table(response: RerankResponse, out: TextIO) -> None:
    out.write(f"{'rank':>4}  {'score':>10}  {'doc':>5}  text\n")
    for rank, result in enumerate(response.results, 1):
        text = (result.document or {}).get("text", "")
        if len(text) > 100:
            text = text[:99] + "…"
        out.write(f"{rank:>4}  {result.relevance_score:>10.4f}  {result.index:>5}  {text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        documents = _read_documents(args.files, sys.stdin)
    except OSError as exc:
        print(f"rerankit: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    from rerankit._sync._client import rerank

    try:
        response = rerank(args.model, args.query, documents, top_n=args.top_n)
    except RerankitError as exc:
        print(f"rerankit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    if args.json:
        payload = msgspec.to_builtins(response)
        payload["meta"] = response.meta
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(payload)).decode() + "\n")
    else:
        _print_table(response, sys.stdout)
    return EXIT_OK
