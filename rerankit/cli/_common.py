"""What every command shares: exit statuses, error output and argument types."""

from __future__ import annotations

import argparse
import sys
import textwrap

__all__ = [
    "DEFAULT_MODEL",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "error",
    "positive_int",
    "wrap",
]

DEFAULT_MODEL = "local/bm25"
"""The embedded default: offline, no API key."""

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad input from the user (an unreadable file, a malformed line): exit status 2."""


def error(message: str) -> None:
    """Print ``rerankit: <message>`` on standard error."""
    print(f"rerankit: {message}", file=sys.stderr)


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def wrap(text: str) -> str:
    """``text`` filled to 79 columns, for a description shown as it is (with raw epilogs)."""
    return textwrap.fill(text, 79)
