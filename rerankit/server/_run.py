"""Running the server: bind, announce, wait for SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

import msgspec
from aiohttp import web

from rerankit.server._app import create_app
from rerankit.server._config import ServerConfig
from rerankit.server._logs import AccessLogger

__all__ = ["serve"]

logger = logging.getLogger("rerankit.server")


async def serve(
    config: ServerConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], object] | None = None,
) -> None:
    """Serve until ``stop`` is set or the process gets SIGTERM or SIGINT.

    Shutting down stops accepting connections, lets requests in flight finish (for up to
    ``server.shutdown_timeout`` seconds), then closes the upstream connection pool.
    ``on_ready`` gets the base URL (``http://host:port``) once the socket is bound.
    """
    overrides = {
        name: value for name, value in (("host", host), ("port", port)) if value is not None
    }
    if overrides:
        server = msgspec.structs.replace(config.server, **overrides)
        config = msgspec.structs.replace(config, server=server)
    settings = config.server
    app = create_app(config)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=logging.getLogger("rerankit.server.access") if settings.access_log else None,
        access_log_class=AccessLogger,
        shutdown_timeout=settings.shutdown_timeout,
    )
    await runner.setup()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = _on_signals(loop, stop.set)
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
        await site.start()
        bound = runner.addresses[0]
        url = f"http://{_url_host(bound[0])}:{bound[1]}"
        logger.info(
            "listening on %s (models: %s; client keys: %s; rate limit: %s)",
            url,
            ", ".join(sorted(config.models)),
            len(config.client_keys()) or "none",
            f"{settings.rate_limit:g}/min per client" if settings.rate_limit else "off",
        )
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
        logger.info("shutting down: finishing requests in flight")
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await runner.cleanup()
    logger.info("stopped")


def _on_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> list[int]:
    installed: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, callback)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            continue
        installed.append(signum)
    return installed


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
