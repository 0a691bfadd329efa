"""Retry policy: which failures are retried, and how long to wait before the next attempt (pure)."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping

import msgspec

from rerankit._errors import APIConnectionError, APIStatusError

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "is_retryable", "parse_retry_after", "retry_delay"]

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""Statuses retried besides every 5xx."""


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How a client retries a failed attempt.

    Waits grow as ``initial_delay * 2**attempt`` up to ``max_delay``, with up to ``jitter`` of that
    removed at random. A ``Retry-After`` the provider sends is honoured when it is at most
    ``max_retry_after`` seconds; a longer one fails the call at once, carrying ``retry_after``.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        from rerankit._errors import ConfigurationError

        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigurationError("max_retries must be an int >= 0")
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"jitter must be between 0 and 1, got {self.jitter!r}")


def is_retryable(exc: BaseException) -> bool:
    """Connection errors, timeouts, 408, 409, 429 and 5xx are worth another attempt."""
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500 or exc.status_code in RETRYABLE_STATUSES
    return isinstance(exc, APIConnectionError)


def retry_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or ``None`` when the wait exceeds the cap."""
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_retry_after else None
    delay: float = min(policy.initial_delay * 2.0**attempt, policy.max_delay)
    return delay * (1 - policy.jitter * rand())


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, or ``Retry-After`` seconds or date."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
        return max(seconds, 0.0)
    return seconds if seconds >= 0 else None
