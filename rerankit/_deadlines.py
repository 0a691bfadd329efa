"""Time limits for the requests in flight on one event loop, kept with a single timer.

A timer per request (what ``asyncio.timeout`` and aiohttp's ``ClientTimeout(total=...)`` arm)
costs a timer handle, a heap push and a cancellation on every call, which is a measurable part
of a loopback request. Here a request only records its task and deadline; one timer is armed
for the earliest deadline, and when it fires it cancels the tasks whose time is up and re-arms
for the next. Requests that end in time never touch the timer.

A deadline's cancellation must never hide the caller's: ``Task.uncancel`` (Python 3.11+) counts
them apart. Python 3.10 has no such count, so there ``own_task`` runs each request in a task of
its own, which only the deadline and the caller's task cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import sys
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from rerankit._lifetimes import PerLoop

__all__ = ["Deadlines", "loop_deadlines", "own_task"]

P = ParamSpec("P")
T = TypeVar("T")


class Deadlines:
    """The deadlines of one loop's requests: ``start`` one, then ``stop`` it (which tells
    whether it passed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._expired: dict[asyncio.Task[Any], int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def start(self, task: asyncio.Task[Any], seconds: float) -> None:
        """Cancel ``task`` in ``seconds`` unless ``stop`` is called first (one per task)."""
        deadline = self._loop.time() + seconds
        self._pending[task] = (deadline, _cancelling(task))
        if deadline < self._timer_at:
            self._arm(deadline)

    def stop(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``'s deadline. True when it passed and the ``CancelledError`` ``task``
        is getting is ours alone: the caller raises its timeout error instead."""
        if self._pending.pop(task, None) is not None:
            return False
        before = self._expired.pop(task, None)
        if before is None:
            return False
        if sys.version_info < (3, 11):
            return True  # Python 3.10: only the deadline cancels the task ``own_task`` made
        return task.uncancel() <= before  # withdraw our request; were there others?

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(deadline, self._fire)
        self._timer_at = deadline

    def _fire(self) -> None:
        # The loop may run a timer a hair early; what it was armed for is due all the same.
        due = max(self._loop.time(), self._timer_at)
        self._timer, self._timer_at = None, math.inf
        earliest = math.inf
        for task, (deadline, before) in list(self._pending.items()):
            if deadline <= due:
                del self._pending[task]
                self._expired[task] = before
                task.cancel()
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self._arm(earliest)


_PER_LOOP: PerLoop[Deadlines] = PerLoop(lambda: Deadlines(asyncio.get_running_loop()))


def loop_deadlines() -> Deadlines:
    """The running loop's ``Deadlines``, shared by every transport on it (one timer a loop)."""
    return _PER_LOOP.get()


def own_task(
    request: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate a coroutine function that starts a deadline for its own task. On Python 3.10,
    each call then runs in a task of its own, so a cancellation of the caller's task ends the
    call with ``CancelledError`` even when the deadline passed too. On 3.11+ it changes
    nothing: ``Deadlines.stop`` counts the cancellations apart."""
    if sys.version_info >= (3, 11):
        return request

    @functools.wraps(request)
    async def in_own_task(*args: P.args, **kwargs: P.kwargs) -> T:
        work = request(*args, **kwargs)
        if asyncio.current_task() is None:
            return await work  # no task to cancel: no deadline either
        return await _apart(asyncio.ensure_future(work))

    return in_own_task


async def _apart(task: asyncio.Task[T]) -> T:
    """``task``'s outcome; if this task is cancelled first, cancel ``task``, wait until it
    ends and raise ``CancelledError`` whatever it ended with."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        while not task.done():  # it hangs up and gives back its connection slot
            with contextlib.suppress(asyncio.CancelledError):  # the first one is raised
                await asyncio.wait((task,))
        if not task.cancelled():
            task.exception()  # the caller's cancellation wins over its outcome
        raise


def _cancelling(task: asyncio.Task[Any]) -> int:
    """How many cancel requests ``task`` has pending (Python 3.11+; 0 before)."""
    cancelling = getattr(task, "cancelling", None)
    return 0 if cancelling is None else int(cancelling())
