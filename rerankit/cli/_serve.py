"""``rerankit serve``: run the Cohere-compatible rerank server until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from rerankit._errors import ConfigurationError
from rerankit.cli._common import EXIT_OK, UsageError, wrap

__all__ = ["add_parser", "run"]

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="run a Cohere-compatible rerank server (POST /v1/rerank, /v2/rerank)",
        description=wrap(
            "Serve Cohere's rerank API (v1 and v2, also what Jina-style clients call) over "
            "any rerankit model, as configured in a TOML file. Without --config it serves the "
            "offline BM25 reranker as model 'bm25' on 127.0.0.1, without authentication. "
            "SIGTERM or Ctrl-C stops it after the requests in flight finish."
        ),
        epilog="example:\n  rerankit serve --config rerankit-server.toml --port 8080",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-c", "--config", metavar="FILE", help="the TOML config file")
    parser.add_argument(
        "--host", help="the address to listen on (default: the config's, else 127.0.0.1)"
    )
    parser.add_argument(
        "-p",
        "--port",
        type=int,
        help="the port to listen on; 0 picks a free one (default: the config's, else 8080)",
    )
    parser.add_argument("--access-log", action="store_true", default=None, help="log every request")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the lowest level logged on standard error (default: INFO)",
    )


def run(args: argparse.Namespace) -> int:
    from rerankit.server import load_config, serve

    if args.config is not None and not Path(args.config).is_file():
        raise UsageError(f"cannot read {args.config}: no such file")
    config = load_config(args.config)
    if args.access_log:
        config.server.access_log = True
    logging.basicConfig(level=args.log_level, format=_LOG_FORMAT)
    try:
        asyncio.run(serve(config, host=args.host, port=args.port))
    except OSError as exc:  # the address is in use, or not ours to bind
        raise ConfigurationError(f"cannot listen: {exc.strerror or exc}") from None
    return EXIT_OK
