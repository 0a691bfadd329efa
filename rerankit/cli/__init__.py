"""The ``rerankit`` command: ``rerank``, ``batch``, ``check``, ``providers``, ``serve``,
``eval`` and ``models``.

Exit statuses: 0 success, 1 failure (an error from rerankit, or failed batch jobs), 2 usage
(bad options, unreadable input), 130 interrupted. Errors go to standard error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rerankit._errors import RerankitError
from rerankit._version import __version__
from rerankit.cli import _batch, _check, _eval, _models, _providers, _rerank, _serve
from rerankit.cli._common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, error

__all__ = ["main"]

_COMMANDS = {
    "rerank": _rerank,
    "batch": _batch,
    "check": _check,
    "providers": _providers,
    "serve": _serve,
    "eval": _eval,
    "models": _models,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerankit",
        description="Rerank documents by relevance to a query, over any rerank API or offline.",
        epilog="Run 'rerankit COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"rerankit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS.values():
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        command: Callable[[argparse.Namespace], int] = _COMMANDS[args.command].run
        return command(args)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except RerankitError as exc:
        error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
