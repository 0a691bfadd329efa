"""``rerankit rerank``: rank documents from files, standard input or JSONL against one query."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec

from rerankit._types import Document, RerankResponse
from rerankit.cli._common import DEFAULT_MODEL, EXIT_OK, UsageError, positive_int, wrap
from rerankit.cli._progress import Progress, watch

__all__ = ["PROGRESS_AFTER", "add_parser", "rank", "read_documents", "run"]

_TEXT_WIDTH = 100
PROGRESS_AFTER = 1.0
"""Seconds a call runs before its progress line appears on a terminal."""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "rerank",
        help="rank documents by relevance to a query",
        description=wrap(
            "Rank documents, one per line of each FILE ('-' reads standard input), by relevance "
            f"to a query. The default model, {DEFAULT_MODEL}, runs offline with no API key."
        ),
        epilog=(
            'examples:\n  rerankit rerank -q "reset password" docs/examples/faq.txt\n'
            '  grep -h password notes/*.txt | rerankit rerank -q "reset password" --json -\n'
            '  rerankit rerank -q "reset password" --jsonl --text-field body articles.jsonl'
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="documents, one per line; - for stdin"
    )
    parser.add_argument("-q", "--query", required=True, help="the search query")
    parser.add_argument(
        "-m", "--model", default=DEFAULT_MODEL, help=f"provider/model (default: {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "-n", "--top-n", type=positive_int, default=None, help="show only the best N"
    )
    parser.add_argument("--json", action="store_true", help="print the response as JSON")
    parser.add_argument(
        "--jsonl",
        action="store_true",
        help="read each FILE as JSON Lines: one object per line, ranked on --text-field",
    )
    parser.add_argument(
        "--text-field",
        default="text",
        metavar="FIELD",
        help="with --jsonl, the field holding each document's text (default: text)",
    )


def run(args: argparse.Namespace) -> int:
    from rerankit._check import check_model

    check_model(args.model, context="cli")  # unknown provider or missing key, in CLI terms
    documents = read_documents(args.files, sys.stdin, jsonl=args.jsonl, field=args.text_field)
    response = asyncio.run(
        rank(
            args.model,
            args.query,
            documents,
            top_n=args.top_n,
            rank_fields=[args.text_field] if args.jsonl else None,
            progress_to=sys.stderr if sys.stderr.isatty() else None,
        )
    )
    if args.json:
        payload = msgspec.to_builtins(response)
        payload["meta"] = response.meta
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(payload)).decode() + "\n")
    else:
        print_table(response, sys.stdout, args.text_field if args.jsonl else "text")
    return EXIT_OK


async def rank(
    model: str,
    query: str,
    documents: list[Document],
    *,
    top_n: int | None,
    rank_fields: list[str] | None,
    progress_to: TextIO | None,
) -> RerankResponse:
    """One rerank call; with ``progress_to`` (a terminal), a progress line once the call has
    taken ``PROGRESS_AFTER`` seconds, counting the documents scored where the model reports
    them (local neural models) and the time spent."""
    from rerankit._client import AsyncClient

    async with AsyncClient() as client:
        call = client.rerank(model, query, documents, top_n=top_n, rank_fields=rank_fields)
        if progress_to is None:
            return await call
        progress = Progress(progress_to, len(documents), unit="documents", delay=PROGRESS_AFTER)
        return await watch(call, progress)


def read_documents(
    paths: Sequence[str], stdin: TextIO, *, jsonl: bool = False, field: str = "text"
) -> list[Document]:
    """The non-blank lines of every file in order (``-``: ``stdin``); with ``jsonl``, each line
    is an object whose string ``field`` is ranked. Raises ``UsageError`` naming the line."""
    documents: list[Document] = []
    for path in paths:
        if path == "-":
            lines = stdin.read().splitlines()
        else:
            try:
                with open(path, encoding="utf-8") as handle:
                    lines = handle.read().splitlines()
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise UsageError(f"cannot read {path}: not UTF-8 text") from None
        name = "<stdin>" if path == "-" else path
        for number, line in enumerate(lines, 1):
            if line.strip():
                documents.append(_parse_line(line, field, f"{name}:{number}") if jsonl else line)
    return documents


def _parse_line(line: str, field: str, where: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise UsageError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a JSON object, got {type(value).__name__}")
    if not isinstance(value.get(field), str):
        raise UsageError(f"{where}: no string field {field!r} (choose one with --text-field)")
    return value


def print_table(response: RerankResponse, out: TextIO, field: str = "text") -> None:
    """Rank, score, input position and the start of each document's text."""
    out.write(f"{'rank':>4}  {'score':>10}  {'doc':>5}  text\n")
    for rank, result in enumerate(response.results, 1):
        text = " ".join(str((result.document or {}).get(field, "")).split())
        if len(text) > _TEXT_WIDTH:
            text = text[: _TEXT_WIDTH - 1] + "…"
        out.write(f"{rank:>4}  {result.relevance_score:>10.4f}  {result.index:>5}  {text}\n")
