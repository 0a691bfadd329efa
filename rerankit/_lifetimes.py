"""State that lives as long as an event loop (``PerLoop``) or a process (``PerProcess``).

Anything bound to an event loop (locks, semaphores, sessions, timers) is kept in a ``PerLoop``:
created lazily for the running loop, never handed to another loop, and dropped with its loop.

- A loop that shuts down its async generators (``asyncio.run`` does) awaits each value's
  ``close`` on that loop, once.
- A loop closed without that shutdown is noticed the next time any loop first needs a value
  here, and at interpreter exit: each value's ``discard`` then releases it synchronously,
  without the dead loop.
- A forked child starts empty. What it inherited belongs to its parent's loops (and sockets):
  it is kept, never closed and never collected (``leave_behind``).

``PerProcess`` is the process-only half: one value per process, made afresh in a forked child.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from rerankit._errors import ConfigurationError

__all__ = ["PerLoop", "PerProcess", "leave_behind", "running_loop"]

T = TypeVar("T")

logger = logging.getLogger("rerankit")


def running_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop; a ``ConfigurationError`` under another async library."""
    loop = asyncio._get_running_loop()
    if loop is None:
        raise ConfigurationError(_not_on_asyncio())
    return loop


def _not_on_asyncio() -> str:
    try:
        import sniffio

        library: str | None = sniffio.current_async_library()
    except Exception:  # sniffio missing, or no async library detected
        library = None
    where = f"under {library}" if library and library != "asyncio" else "outside an event loop"
    return (
        f"rerankit's async API runs on asyncio, and was called {where}. From trio (or any "
        "other library), call the sync API in a worker thread: "
        "`await trio.to_thread.run_sync(lambda: rerankit.rerank(...))`, or a "
        "`rerankit.Client()` method the same way"
    )


class PerLoop(Generic[T]):
    """One ``factory()`` value per event loop, made on first use in that loop.

    ``close(value)`` is awaited on the loop when it shuts down its async generators;
    ``discard(value)`` runs (synchronously, on any thread) when the loop was closed without
    that, so the value must be released without it. Either may be omitted.
    """

    __slots__ = ("__weakref__", "_close", "_discard", "_factory", "_last")

    def __init__(
        self,
        factory: Callable[[], T],
        *,
        close: Callable[[T], Awaitable[None]] | None = None,
        discard: Callable[[T], None] | None = None,
    ) -> None:
        self._factory = factory
        self._close = close
        self._discard = discard
        self._last: tuple[asyncio.AbstractEventLoop, T] | None = None
        _instances.add(self)

    def get(self) -> T:
        """The running loop's value, made now if it has none."""
        loop = asyncio._get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        if loop is None:
            raise ConfigurationError(_not_on_asyncio())
        record = _records.get(loop)
        if record is None:
            record = _watch(loop)
        value: T
        if self in record.values:
            value = record.values[self]
        else:
            value = record.values[self] = self._factory()
            if self._close is not None or self._discard is not None:
                record.owners.add(self)  # kept until its value is released
        self._last = (loop, value)
        return value

    def peek(self, loop: asyncio.AbstractEventLoop) -> T | None:
        """``loop``'s value, or ``None`` (never makes one)."""
        record = _records.get(loop)
        return None if record is None else record.values.get(self)

    def pop(self, loop: asyncio.AbstractEventLoop) -> T | None:
        """Take ``loop``'s value out (the caller releases it), or ``None``."""
        self._forget(loop)
        record = _records.get(loop)
        if record is None:
            return None
        record.owners.discard(self)
        value: T | None = record.values.pop(self, None)
        return value

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        """The loops that hold a value of this ``PerLoop`` now."""
        return [loop for loop, record in list(_records.items()) if self in record.values]

    def _forget(self, loop: asyncio.AbstractEventLoop) -> None:
        last = self._last
        if last is not None and last[0] is loop:
            self._last = None


class PerProcess(Generic[T]):
    """One ``factory()`` value per process, made on first use; a forked child makes its own
    (what it inherited is left behind untouched: it may be in use by the parent)."""

    __slots__ = ("__weakref__", "_factory", "_pid", "_value")

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._pid = -1
        self._value: T | None = None

    def get(self) -> T:
        """This process's value, made now if it has none."""
        if self._pid != os.getpid():
            with _lock:
                if self._pid != os.getpid():
                    if self._pid != -1:
                        leave_behind(self._value)
                    self._value = self._factory()
                    self._pid = os.getpid()
        return self._value  # type: ignore[return-value]

    def peek(self) -> T | None:
        """This process's value if it made one, else ``None`` (never makes one)."""
        return self._value if self._pid == os.getpid() else None


# --------------------------------------------------------------------------- loops


class _Record:
    """What rerankit keeps for one event loop: each ``PerLoop``'s value, and the async
    generator through which the loop's shutdown reaches them.

    A value goes with its ``PerLoop`` (a client's lock with the client), unless it has to be
    released (closed or discarded): then its ``PerLoop`` is kept until that is done.
    """

    __slots__ = ("dead", "loop", "owners", "values", "watcher")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.values: weakref.WeakKeyDictionary[PerLoop[Any], Any] = weakref.WeakKeyDictionary()
        self.owners: set[PerLoop[Any]] = set()
        self.watcher: AsyncGenerator[None, None] | None = None
        self.dead = False


_records: dict[asyncio.AbstractEventLoop, _Record] = {}
_instances: weakref.WeakSet[PerLoop[Any]] = weakref.WeakSet()
_lock = threading.RLock()  # re-entrant: a PerProcess factory may get another PerProcess value


def _watch(loop: asyncio.AbstractEventLoop) -> _Record:
    """Start keeping state for the running ``loop`` (first dropping that of closed loops)."""
    sweep()
    record = _Record(loop)
    if not getattr(loop, "_asyncgens_shutdown_called", False):  # else: found closed later
        watcher = _watcher(record)
        with contextlib.suppress(StopIteration):  # registers it with the loop; runs to its yield
            watcher.asend(None).send(None)
        record.watcher = watcher
    with _lock:
        return _records.setdefault(loop, record)


async def _watcher(record: _Record) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if not record.dead:  # the loop is shutting down its async generators
            await _shut_down(record)


async def _shut_down(record: _Record) -> None:
    """Close ``record``'s values on their loop, which is shutting down."""
    record.dead = True
    with _lock:
        if _records.get(record.loop) is record:
            del _records[record.loop]
    for owner, value in list(record.values.items()):
        owner._forget(record.loop)
        if owner not in record.values:
            continue  # taken out meanwhile by whoever closed an earlier value
        if owner._close is not None:
            try:
                await owner._close(value)
            except Exception:
                logger.debug("closing loop-bound state failed", exc_info=True)
    record.values.clear()
    record.owners.clear()


def sweep(*, at_exit: bool = False) -> None:
    """Release the state of loops closed without shutting down their async generators
    (and, ``at_exit``, of every loop not running: nothing can run them any more)."""
    for loop, record in list(_records.items()):
        if loop.is_closed() or (at_exit and not loop.is_running()):
            with _lock:
                if _records.get(loop) is not record:
                    continue
                del _records[loop]
            _discard(record)
        elif at_exit:
            leave_behind(record)  # a loop still running in another thread owns it


def _discard(record: _Record) -> None:
    record.dead = True
    for owner, value in list(record.values.items()):
        owner._forget(record.loop)
        if owner._discard is not None:
            try:
                owner._discard(value)
            except Exception:
                logger.debug("releasing loop-bound state failed", exc_info=True)
    record.values.clear()
    record.owners.clear()
    watcher, record.watcher = record.watcher, None
    if watcher is not None:
        # Finish it now: collected unfinished, it would call into its closed loop.
        with contextlib.suppress(StopIteration, RuntimeError):
            watcher.aclose().send(None)


# --------------------------------------------------------------------------- process


_left_behind: list[object] = []
"""What a forked child inherited from its parent: kept, never closed, never collected."""
_left_behind_kept = False


def leave_behind(obj: object) -> None:
    """Keep ``obj`` for good: it belongs to another process (inherited through fork), so
    neither closing nor collecting it is safe. Not even interpreter teardown frees it."""
    global _left_behind_kept
    if not _left_behind_kept:
        _never_free(_left_behind)
        _left_behind_kept = True
    _left_behind.append(obj)


def _never_free(obj: object) -> None:
    """Leak one reference to ``obj`` so interpreter teardown cannot collect it either."""
    try:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    except (ImportError, AttributeError):  # no ctypes, or not CPython: nothing frees at exit
        pass


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()
    if _records:
        leave_behind(list(_records.values()))
        for record in _records.values():
            record.dead = True
        _records.clear()
    for owner in list(_instances):
        owner._last = None


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(sweep, at_exit=True)
