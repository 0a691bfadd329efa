"""Time limits for the requests in flight on one event loop, kept with a single timer.

A timer per request (what ``asyncio.timeout`` and aiohttp's ``ClientTimeout(total=...)`` arm)
costs a timer handle, a heap push and a cancellation on every call, which is a measurable part
of a loopback request. Here a request only records its task and deadline; one timer is armed
for the earliest deadline, and when it fires it cancels the tasks whose time is up and re-arms
for the next. Requests that end in time never touch the timer.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from rerankit._lifetimes import PerLoop

__all__ = ["Deadlines", "loop_deadlines"]


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
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+: withdraw our cancel request
        return uncancel is None or uncancel() <= before

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


def _cancelling(task: asyncio.Task[Any]) -> int:
    """How many cancel requests ``task`` has pending (Python 3.11+; 0 before)."""
    cancelling = getattr(task, "cancelling", None)
    return 0 if cancelling is None else int(cancelling())
