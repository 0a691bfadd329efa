"""Events of a call's attempts, for hooks and structured logs, and the rate limits on them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import msgspec

from rerankit._ratelimit import RateLimiter
from rerankit._types import RerankResponse, Usage

__all__ = ["EventHook", "Monitor", "RerankEvent"]

logger = logging.getLogger("rerankit")

EventKind = Literal["request", "response", "retry", "error"]


class RerankEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One moment of one request to a provider.

    ``request``: an attempt is about to be sent (after any rate-limit wait). ``response``: it
    succeeded, with ``latency`` (seconds) and ``usage``. ``retry``: it failed with ``error`` and
    will be tried again in ``retry_in`` seconds. ``error``: it failed for good. ``batch`` is set
    when a call was split into several requests. Events never carry credentials.
    """

    kind: EventKind
    provider: str
    model: str
    attempt: int
    documents: int
    latency: float | None = None
    usage: Usage | None = None
    error: Any = None
    retry_in: float | None = None
    rate_limit_wait: float = 0.0
    batch: int | None = None
    request_id: str | None = None


EventHook = Callable[[RerankEvent], object]
"""A callback taking a ``RerankEvent``; it runs inline, so keep it quick."""


class Monitor:
    """Rate limiting, hooks and debug logging around each attempt of one request."""

    __slots__ = ("_attempt", "_hooks", "_limiter", "_log", "_started", "_tokens", "_waited", "base")

    def __init__(
        self,
        hooks: Sequence[EventHook],
        limiter: RateLimiter | None,
        tokens: int,
        base: dict[str, Any],
    ) -> None:
        self._hooks = hooks
        self._limiter = limiter
        self._log = logger.isEnabledFor(logging.DEBUG)
        self._tokens = tokens
        self._attempt = 0
        self._started = 0.0
        self._waited = 0.0
        self.base = base
        """provider, model, documents and batch of the request this monitor watches."""

    @property
    def active(self) -> bool:
        return bool(self._hooks or self._limiter or self._log)

    async def before(self) -> None:
        """Wait for the rate limit, then report the attempt."""
        self._attempt += 1
        self._waited = 0.0
        if self._limiter is not None:
            waited = self._limiter.waited
            await self._limiter.acquire(self._tokens)
            self._waited = self._limiter.waited - waited
        self._started = time.perf_counter()
        self._emit("request")

    def succeeded(self, response: RerankResponse) -> None:
        self._emit(
            "response",
            latency=time.perf_counter() - self._started,
            usage=response.usage,
            request_id=response.id,
        )

    def failed(self, error: BaseException, retry_in: float | None) -> None:
        self._emit(
            "retry" if retry_in is not None else "error",
            latency=time.perf_counter() - self._started,
            error=error,
            retry_in=retry_in,
            request_id=getattr(error, "request_id", None),
        )

    def _emit(self, kind: EventKind, **fields: Any) -> None:
        event = RerankEvent(
            kind=kind, attempt=self._attempt, rate_limit_wait=self._waited, **self.base, **fields
        )
        if self._log:
            logger.debug(
                "rerankit %s: %s model %r attempt %d",
                kind,
                event.provider,
                event.model,
                event.attempt,
                extra={"rerankit_event": _loggable(event)},
            )
        for hook in self._hooks:
            try:
                hook(event)
            except Exception:
                logger.exception("a rerankit event hook failed on a %s event", kind)


def _loggable(event: RerankEvent) -> dict[str, Any]:
    """The event as plain fields for log records (the error as its class and message)."""
    fields = msgspec.structs.asdict(event)
    error = fields.pop("error")
    if error is not None:
        fields["error"] = f"{type(error).__name__}: {error}"
    if event.usage is not None:
        fields["usage"] = msgspec.structs.asdict(event.usage)
    return fields
