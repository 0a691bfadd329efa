"""The private event loop thread that runs the sync facade's coroutines.

One daemon thread per process, started on first use. Callers block on a thread-safe future, so
the facade works from many threads at once and from inside a running event loop (a notebook).
A forked child starts a fresh loop; interpreter exit closes the clients' connection pools
without waiting on anything that could hang; Ctrl-C cancels the in-flight request.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from rerankit._errors import RerankitError

if TYPE_CHECKING:
    from rerankit._client import AsyncClient

__all__ = ["Portal", "get_portal"]

P = ParamSpec("P")
T = TypeVar("T")

_SHUTDOWN_TIMEOUT = 2.0
_CANCEL_TIMEOUT = 5.0


class Portal:
    """An event loop running forever in a daemon thread, and a blocking ``call`` into it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._clients: weakref.WeakSet[AsyncClient] = weakref.WeakSet()
        self._thread = threading.Thread(target=self._run, name="rerankit-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def adopt(self, client: AsyncClient) -> None:
        """Close ``client``'s connection pool when the interpreter exits."""
        self._clients.add(client)

    def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the loop thread and wait for its result.

        An exception raised while waiting (``KeyboardInterrupt``) cancels the coroutine and
        waits briefly for it to unwind, so the in-flight request is really abandoned.
        """
        if threading.get_ident() == self._thread.ident:
            raise RerankitError(
                "rerankit's sync API was called from its own event loop thread; "
                "use AsyncClient and await it there instead"
            )
        finished = threading.Event()
        future = asyncio.run_coroutine_threadsafe(_signal(fn(*args, **kwargs), finished), self.loop)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
                finished.wait(_CANCEL_TIMEOUT)
            raise

    def shutdown(self) -> None:
        """Close adopted clients, then stop the loop; gives up after a short timeout."""
        if not self._thread.is_alive():
            return
        clients = list(self._clients)
        if clients:
            future = asyncio.run_coroutine_threadsafe(_close_all(clients), self.loop)
            try:
                future.result(_SHUTDOWN_TIMEOUT)
            except BaseException:
                future.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_SHUTDOWN_TIMEOUT)


async def _signal(coro: Awaitable[T], finished: threading.Event) -> T:
    try:
        return await coro
    finally:
        finished.set()


async def _close_all(clients: list[AsyncClient]) -> None:
    await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)


_lock = threading.Lock()
_portal: Portal | None = None
_left_behind: list[Portal] = []
"""Portals inherited through fork: their thread does not exist in the child; never touched."""


def get_portal() -> Portal:
    """The process's portal, started on first use (and again in a forked child)."""
    global _portal
    portal = _portal
    if portal is not None:
        return portal
    with _lock:
        if _portal is None:
            _portal = Portal()
        return _portal


def _after_fork_in_child() -> None:
    global _portal, _lock
    if _portal is not None:
        _left_behind.append(_portal)
    _portal = None
    _lock = threading.Lock()


def _at_exit() -> None:
    portal = _portal
    if portal is not None:
        portal.shutdown()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
