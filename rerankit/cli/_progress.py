"""A plain-text progress bar on standard error, redrawn in place on a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 24


class Progress:
    """``[########......]  412/1000 jobs  41%  35.2/s  ETA 17s  2 failed``.

    On a terminal the line is redrawn at most ``interval`` seconds apart; elsewhere (a log file)
    a new line is written every ``interval`` seconds. ``total`` may be unknown (``None``).
    """

    def __init__(
        self,
        out: TextIO,
        total: int | None,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.total = total
        self.tty = out.isatty()
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self.clock = clock
        self.started = clock()
        self.done = self.skipped = self.failed = 0
        self._drawn = float("-inf")

    def update(self, *, done: int = 0, skipped: int = 0, failed: int = 0) -> None:
        """Count finished jobs (``done`` includes ``failed``) and redraw if it is time."""
        self.done += done
        self.skipped += skipped
        self.failed += failed
        now = self.clock()
        if now - self._drawn >= self.interval:
            self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line."""
        self._draw(self.clock())
        if self.tty:
            self.out.write("\n")
            self.out.flush()

    def render(self, now: float) -> str:
        """The progress line at time ``now``."""
        finished = self.done + self.skipped
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        parts = []
        if self.total:
            share = min(1.0, finished / self.total)
            filled = int(share * _WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_WIDTH - filled)}]")
            parts.append(f"{finished}/{self.total} jobs")
            parts.append(f"{share:4.0%}")
        else:
            parts.append(f"{finished} jobs")
        parts.append(f"{rate:.1f}/s")
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


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
