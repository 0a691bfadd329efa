"""A Cohere-compatible rerank server (``rerankit serve``), built on aiohttp.web.

``POST /v1/rerank`` and ``POST /v2/rerank`` speak Cohere's formats (Jina-style clients post to
``/v1/rerank``); ``GET /v1/models`` and ``GET /health``. A TOML config maps public model names
to rerankit models. Importing this package does not import aiohttp.web; starting a server does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from rerankit.server._config import (
    ModelRoute,
    ServerConfig,
    ServerSettings,
    load_config,
    parse_config,
)

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "ModelRoute",
    "ServerConfig",
    "ServerSettings",
    "create_app",
    "load_config",
    "parse_config",
    "serve",
]


def create_app(config: ServerConfig) -> web.Application:
    """The server as an ``aiohttp.web.Application`` (one ``AsyncClient`` for its lifetime)."""
    from rerankit.server._app import create_app

    return create_app(config)


async def serve(
    config: ServerConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], object] | None = None,
) -> None:
    """Serve ``config`` until ``stop`` is set or SIGTERM/SIGINT; in-flight requests finish."""
    from rerankit.server._run import serve

    await serve(config, host=host, port=port, stop=stop, on_ready=on_ready)
