"""The private event loop thread that runs the sync facade's coroutines.

One daemon thread per process, started on first call. Callers block on a lock of their own, so
the facade works from many threads at once and from inside a running event loop (a notebook).
A forked child starts a fresh loop and never touches what it inherited; interpreter exit, or
dropping a ``Client`` unclosed, closes its connection pool without waiting on anything that
could hang; Ctrl-C cancels the in-flight request.

The loop runs one long-lived main task, as ``asyncio.run`` would, so anyio keeps its worker
threads (``anyio.to_thread``) for the next call instead of ending them with each call's task.
The loop thread blocks process signals only while it waits for I/O: threads and child processes
started from it (workers, credential helpers) inherit a clean signal mask.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import selectors
import signal
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from rerankit._errors import RerankitError
from rerankit._lifetimes import PerProcess

if TYPE_CHECKING:
    from rerankit._client import AsyncClient

__all__ = ["Portal", "adopt", "call", "get_portal"]

P = ParamSpec("P")
T = TypeVar("T")

_SHUTDOWN_TIMEOUT = 2.0
_CANCEL_TIMEOUT = 5.0
_SHUT_DOWN = "rerankit's event loop has shut down: the interpreter is exiting"
_WAIT_SLICE = 0.1 if sys.platform == "win32" else -1
"""How long a caller blocks at a time: forever on POSIX, where a signal interrupts the wait;
in slices on Windows, where only a return to the interpreter lets Ctrl-C through."""
_PROCESS_SIGNALS = frozenset(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
)
"""Signals the loop thread blocks while it waits, so the kernel delivers them to a thread that
can wake up and run Python's handlers: a main thread blocked in ``call`` gets Ctrl-C's
``KeyboardInterrupt``."""


class _SignalBlockingSelector(selectors.DefaultSelector):
    """Blocks ``_PROCESS_SIGNALS`` for the calling thread only while it waits in ``select``.

    A mask blocked for the thread's whole life would pass on to every thread and child process
    started from it, and a child that blocks SIGTERM cannot be stopped with it.
    """

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:  # a poll between callbacks: no wait
            return super().select(timeout)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _PROCESS_SIGNALS)
        try:
            return super().select(timeout)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _new_loop() -> asyncio.AbstractEventLoop:
    """A selector loop that blocks signals only while it waits (where the platform can)."""
    if not hasattr(signal, "pthread_sigmask"):
        return asyncio.new_event_loop()
    return asyncio.SelectorEventLoop(_SignalBlockingSelector())


class _Job(Generic[T]):
    """One coroutine run on the loop for one waiting thread; ``done`` is released when it ends."""

    __slots__ = ("done", "error", "finished", "result", "task")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.finished = False
        self.task: asyncio.Task[None] | None = None
        self.result: T | None = None
        self.error: BaseException | None = None

    def finish(self) -> None:
        self.finished = True
        self.done.release()


class Portal:
    """An event loop running forever in a daemon thread, and a blocking ``call`` into it."""

    def __init__(self) -> None:
        self.loop = _new_loop()
        self._stop = self.loop.create_future()
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="rerankit-loop", daemon=True)
        self._thread.start()
        self._ident = self._thread.ident

    def _run(self) -> None:
        if hasattr(signal, "pthread_sigmask"):  # not the mask of whichever thread started it
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        """The loop's main task, as under ``asyncio.run``: anyio ties its worker threads to it."""
        await self._stop

    @property
    def running(self) -> bool:
        """Whether calls can still be made (false once interpreter exit has shut it down)."""
        return not self._closed and self._thread.is_alive()

    def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the loop thread and wait for its result.

        An exception raised while waiting (``KeyboardInterrupt``) cancels the coroutine and
        waits briefly for it to unwind, so the in-flight request is really abandoned. Raises
        ``RerankitError`` on the loop thread itself (waiting there would deadlock) and once
        interpreter exit has shut the loop down.
        """
        if threading.get_ident() == self._ident:
            raise RerankitError(
                "rerankit's sync API was called from its own event loop thread (from a "
                "provider, or a callback running there); use AsyncClient and await it instead"
            )
        if self._closed:
            raise RerankitError(_SHUT_DOWN)
        job: _Job[T] = _Job()
        try:
            self.loop.call_soon_threadsafe(self._start, job, fn, args, kwargs)
        except RuntimeError:  # closed since the check above
            raise RerankitError(_SHUT_DOWN) from None
        try:
            while not job.done.acquire(timeout=_WAIT_SLICE):
                pass
        except BaseException:
            if not job.finished:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    self.loop.call_soon_threadsafe(self._cancel, job)
                job.done.acquire(timeout=_CANCEL_TIMEOUT)
            raise
        error = job.error
        if error is not None:
            job.error = None  # no cycle through the traceback's frames
            try:
                raise error
            finally:
                del error
        return cast(T, job.result)

    def _start(
        self,
        job: _Job[Any],
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        job.task = self.loop.create_task(_run(job, fn, args, kwargs))

    @staticmethod
    def _cancel(job: _Job[Any]) -> None:
        if job.task is not None:
            job.task.cancel()
        elif not job.finished:  # never started: ``_start`` would have run before this
            job.finish()

    def close_soon(self, client: AsyncClient) -> None:
        """Close ``client`` on the loop without waiting (any thread, no-op once shut down)."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self.loop.call_soon_threadsafe(self._spawn_close, client)

    def _spawn_close(self, client: AsyncClient) -> None:
        task = self.loop.create_task(_close_quietly(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def shutdown(self) -> None:
        """Close adopted clients, then stop the loop; gives up after a short timeout."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._wind_down(), self.loop)
        try:
            future.result(_SHUTDOWN_TIMEOUT)
        except BaseException:
            future.cancel()
        self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(_SHUTDOWN_TIMEOUT)

    async def _wind_down(self) -> None:
        state = _STATE.peek()
        clients = [] if state is None else list(state.clients)
        await asyncio.gather(
            *(_close_quietly(client) for client in clients), *self._closing, return_exceptions=True
        )


async def _run(
    job: _Job[Any],
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    try:
        job.result = await fn(*args, **kwargs)
    except BaseException as exc:  # the caller's thread raises it, CancelledError included
        job.error = exc
    finally:
        job.finish()


async def _close_quietly(client: AsyncClient) -> None:
    with contextlib.suppress(Exception):
        await client.aclose()


class _ProcessState:
    """This process's portal, started on first use, and every sync client's ``AsyncClient``
    (closed at interpreter exit). A forked child makes its own: the parent's portal thread does
    not exist there, and freeing the parent's clients would act on its sockets (the epoll
    instance is shared; an unclosed connector closes its transports when collected), so
    ``PerProcess`` leaves them behind."""

    __slots__ = ("clients", "lock", "portal")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.portal: Portal | None = None
        self.clients: weakref.WeakSet[AsyncClient] = weakref.WeakSet()


_STATE: PerProcess[_ProcessState] = PerProcess(_ProcessState)


def get_portal() -> Portal:
    """The process's portal, started on first use (and again in a forked child)."""
    state = _STATE.get()
    portal = state.portal
    if portal is not None:
        return portal
    with state.lock:
        if state.portal is None:
            state.portal = Portal()
        return state.portal


def call(fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` on this process's portal and wait for its result."""
    return get_portal().call(fn, *args, **kwargs)


def adopt(owner: object, client: AsyncClient) -> None:
    """Close ``client``'s pool at interpreter exit, or soon after ``owner`` is collected."""
    _STATE.get().clients.add(client)
    weakref.finalize(owner, _close_soon, client).atexit = False


def _running_portal() -> Portal | None:
    """This process's portal if it was started (never starts one)."""
    state = _STATE.peek()
    return None if state is None else state.portal


def _close_soon(client: AsyncClient) -> None:
    portal = _running_portal()
    if portal is not None and portal.running:
        portal.close_soon(client)
    # else no loop of this process ever opened a connection for it (what a forked child
    # inherited is left behind), or exit has closed it already


def _at_exit() -> None:
    portal = _running_portal()
    if portal is not None:
        portal.shutdown()


atexit.register(_at_exit)
