"""A plain-text progress bar on standard error, redrawn in place on a terminal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

from rerankit._reporting import reporting

__all__ = ["Progress", "watch"]

T = TypeVar("T")

_WIDTH = 24


class Progress:
    """``[########......]  412/1000 jobs  41%  35.2/s  ETA 17s  2 failed``.

    On a terminal the line is redrawn at most ``interval`` seconds apart; elsewhere (a log file)
    a new line is written every ``interval`` seconds. ``total`` may be unknown (``None``).
    Nothing is drawn before ``delay`` seconds have passed, so quick work shows no bar at all.
    """

    def __init__(
        self,
        out: TextIO,
        total: int | None,
        *,
        unit: str = "jobs",
        interval: float | None = None,
        delay: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.total = total
        self.unit = unit
        self.tty = out.isatty()
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self.clock = clock
        self.started = clock()
        self.delay = delay
        self.done = self.skipped = self.failed = 0
        self._drawn = float("-inf")

    def update(self, *, done: int = 0, skipped: int = 0, failed: int = 0) -> None:
        """Count finished items (``done`` includes ``failed``) and redraw if it is time."""
        self.done += done
        self.skipped += skipped
        self.failed += failed
        now = self.clock()
        if now - self._drawn >= self.interval and now - self.started >= self.delay:
            self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line (nothing if nothing was drawn and the work
        took less than ``delay``)."""
        now = self.clock()
        if self._drawn == float("-inf") and now - self.started < self.delay:
            return
        self._draw(now)
        if self.tty:
            self.out.write("\n")
            self.out.flush()

    def render(self, now: float) -> str:
        """The progress line at time ``now``."""
        finished = self.done + self.skipped
        if self.total:
            finished = min(finished, self.total)
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        parts = []
        if self.total:
            share = min(1.0, finished / self.total)
            filled = int(share * _WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_WIDTH - filled)}]")
            parts.append(f"{finished}/{self.total} {self.unit}")
            parts.append(f"{share:4.0%}")
        else:
            parts.append(f"{finished} {self.unit}")
        parts.append(f"{rate:.1f}/s")
        if not finished:
            parts.append(f"{_duration(elapsed)} elapsed")
        if self.total and rate > 0 and finished < self.total:
            parts.append(f"ETA {_duration((self.total - finished) / rate)}")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self._drawn = now
        line = self.render(now)
        self.out.write(f"\r{line}\x1b[K" if self.tty else line + "\n")
        self.out.flush()


async def watch(work: Awaitable[T], progress: Progress) -> T:
    """Await ``work``, counting on ``progress`` the items it reports done
    (``rerankit._reporting.report``) and redrawing it while waiting; all of ``progress.total``
    counts as done when ``work`` returns. The line is ended however ``work`` ends."""
    with reporting(lambda count: progress.update(done=count)):
        task = asyncio.ensure_future(work)  # the task copies the context: it reports to us
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=progress.interval)
            progress.update()
        result = task.result()
        if progress.total:
            progress.done = max(progress.done, progress.total)
        return result
    finally:
        task.cancel()
        progress.close()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
