"""Events of a call's attempts, for hooks and structured logs, and the rate limits on them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from rerankit._errors import ConfigurationError
from rerankit._quota import LocalQuota, Quota, QuotaBackend, check_quota
from rerankit._ratelimit import RateLimiter
from rerankit._redact import fingerprint
from rerankit._settings import ProviderSettings
from rerankit._tokens import TokenEstimator
from rerankit._types import RerankRequest, RerankResponse, Usage

if TYPE_CHECKING:
    from rerankit.providers._base import Provider, ProviderContext

__all__ = ["EventHook", "Monitor", "RerankEvent", "Watchers", "call_tags"]

logger = logging.getLogger("rerankit")

EventKind = Literal["request", "response", "retry", "error"]


class RerankEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One moment of one request to a provider.

    ``request``: an attempt is about to be sent (after any rate-limit wait). ``response``: it
    succeeded, with ``latency`` (seconds) and ``usage``. ``retry``: it failed with ``error`` and
    will be tried again in ``retry_in`` seconds. ``error``: it failed for good. ``batch`` is set
    when a call was split into several requests. ``metadata`` and ``user`` are what the call
    passed as ``metadata=`` and ``user=``. Events never carry credentials.
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
    metadata: dict[str, Any] | None = None
    user: str | None = None


EventHook = Callable[[RerankEvent], object]
"""A callback taking a ``RerankEvent``; it runs inline, so keep it quick."""


class Monitor:
    """Rate limiting, hooks and debug logging around each attempt of one request."""

    __slots__ = (
        "_attempt",
        "_backend",
        "_hooks",
        "_log",
        "_quota",
        "_started",
        "_tokens",
        "_waited",
        "base",
    )

    def __init__(
        self,
        hooks: Sequence[EventHook],
        backend: QuotaBackend,
        quota: Quota | None,
        tokens: int,
        base: dict[str, Any],
    ) -> None:
        self._hooks = hooks
        self._backend = backend
        self._quota = quota
        self._log = logger.isEnabledFor(logging.DEBUG)
        self._tokens = tokens
        self._attempt = 0
        self._started = 0.0
        self._waited = 0.0
        self.base = base
        """provider, model, documents and batch of the request this monitor watches."""

    @property
    def active(self) -> bool:
        return bool(self._hooks or self._quota or self._log)

    async def before(self) -> None:
        """Wait for the rate limit, then report the attempt."""
        self._attempt += 1
        self._waited = 0.0
        if self._quota is not None:
            self._waited = await self._backend.acquire(self._quota, self._tokens)
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
        retry_after = getattr(error, "retry_after", None)
        if self._quota is not None and retry_after:
            self._backend.penalise(self._quota, retry_after)
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


_ESTIMATOR = TokenEstimator()


class Watchers:
    """A client's hooks and rate limits (one quota per provider and API key, in ``backend``)."""

    def __init__(self, hooks: object, quota: object = None) -> None:
        self.hooks = _check_hooks(hooks)
        self.backend = check_quota(quota)

    def for_call(
        self,
        cls: type[Provider],
        settings: ProviderSettings | None,
        ctx: ProviderContext,
        tags: Mapping[str, Any] | None = None,
    ) -> Callable[[RerankRequest, int | None], Monitor] | None:
        """What watches each request of one call (``None``: nothing to do, the fast path);
        ``tags`` (from ``call_tags``) go into every event."""
        quota = self.quota(cls, settings, ctx)
        if not self.hooks and quota is None and not logger.isEnabledFor(logging.DEBUG):
            return None
        hooks, backend = self.hooks, self.backend

        def watch(request: RerankRequest, batch: int | None) -> Monitor:
            tokens = 0
            if quota is not None and quota.counts_tokens:
                counts = _ESTIMATOR.count([request.query, *request.documents])
                tokens = counts[0] * len(request.documents) + sum(counts[1:])
            base = {
                "provider": ctx.provider,
                "model": ctx.model,
                "documents": len(request.documents),
                "batch": batch,
            }
            if tags:
                base.update(tags)
            return Monitor(hooks, backend, quota, tokens, base)

        return watch

    def quota(
        self, cls: type[Provider], settings: ProviderSettings | None, ctx: ProviderContext
    ) -> Quota | None:
        """The limits of this provider and key, from its settings or published defaults."""
        rpm, tpm = cls.default_requests_per_minute, cls.default_tokens_per_minute
        if settings is not None:
            rpm = rpm if settings.requests_per_minute is None else settings.requests_per_minute
            tpm = tpm if settings.tokens_per_minute is None else settings.tokens_per_minute
        if not rpm and not tpm:
            return None
        return Quota(ctx.provider, fingerprint(ctx.api_key), rpm or None, tpm or None)

    @property
    def limiters(self) -> dict[tuple[str, str | None], RateLimiter]:
        """The local limiters made so far, by (provider, key fingerprint)."""
        return self.backend.limiters if isinstance(self.backend, LocalQuota) else {}


def call_tags(metadata: object, user: object) -> dict[str, Any] | None:
    """A call's ``metadata`` and ``user`` as event fields, checked (``None``: neither given)."""
    if metadata is None and user is None:
        return None
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ConfigurationError(
            f"metadata must be a dict (it is handed to hooks), got {type(metadata).__name__}"
        )
    if user is not None and not isinstance(user, str):
        raise ConfigurationError(f"user must be a str, got {type(user).__name__}")
    return {"metadata": None if metadata is None else dict(metadata), "user": user}


def _check_hooks(hooks: object) -> tuple[EventHook, ...]:
    if hooks is None:
        return ()
    if callable(hooks):
        return (hooks,)
    if not isinstance(hooks, Sequence) or not all(callable(hook) for hook in hooks):
        raise ConfigurationError("hooks must be a list of callables taking a RerankEvent")
    return tuple(hooks)
