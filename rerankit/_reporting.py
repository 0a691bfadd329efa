"""Work-done reports from deep inside a call, for whoever watches it (the command line's
progress line).

A watcher wraps the start of a call in ``reporting(callback)``; code that does long work in
steps (a local model scoring batches of documents) calls ``report(count)`` after each step, on
the event loop. Unwatched, ``report`` costs one context-variable lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["report", "reporting"]

_WATCHER: ContextVar[Callable[[int], None] | None] = ContextVar("rerankit_watcher", default=None)


@contextmanager
def reporting(callback: Callable[[int], None]) -> Iterator[None]:
    """Send the reports of work started in this block (and of the tasks it creates, which copy
    the context) to ``callback``."""
    token = _WATCHER.set(callback)
    try:
        yield
    finally:
        _WATCHER.reset(token)


def report(count: int) -> None:
    """Tell the watcher, if any, that ``count`` more items (documents) are done."""
    watcher = _WATCHER.get()
    if watcher is not None:
        watcher(count)
