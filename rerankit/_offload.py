"""CPU work that grows with the input, kept off the event loop once it is large.

Each caller estimates its work in its own unit (characters, results, bytes) and passes the
most it runs inline, a figure measured to take a few milliseconds at most (see
docs/performance.md). Small calls run inline, at no extra cost; larger ones run on a worker
thread, so one big request cannot stall every other task on the loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["in_thread", "run_sized"]

_T = TypeVar("_T")
_P = ParamSpec("_P")


async def run_sized(
    work: int, inline_limit: int, function: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """``function(*args, **kwargs)``: inline when ``work <= inline_limit``, else on a worker
    thread. (On a per-call path, test the size first and call ``in_thread`` only when large:
    that spares small calls this coroutine and the packing of arguments.)"""
    if work <= inline_limit:
        return function(*args, **kwargs)
    return await in_thread(function, *args, **kwargs)


async def in_thread(function: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``function(*args, **kwargs)`` on a worker thread; cancelling the caller waits for it to
    finish (the work is pure: nothing is left half done)."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))
