"""Running requests: one call with its retries, and a plan's batches concurrently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import msgspec

from rerankit._errors import APIError, ResponseValidationError
from rerankit._events import Monitor
from rerankit._images import refuse_images
from rerankit._plan import Plan
from rerankit._retry import RetryPolicy, is_retryable, retry_delay
from rerankit._types import RerankRequest, RerankResponse, Usage
from rerankit.providers._base import Provider, ProviderContext

__all__ = ["call_with_retries", "run_batches", "sum_usage"]

logger = logging.getLogger("rerankit")


async def call_with_retries(
    impl: Provider,
    request: RerankRequest,
    ctx: ProviderContext,
    retries: int,
    policy: RetryPolicy,
    monitor: Monitor | None = None,
) -> RerankResponse:
    """``impl.rerank``, attempted again after retryable failures, up to ``retries`` times.

    With a ``monitor``, each attempt waits for the rate limit and reports its events. Image
    documents the model cannot take raise ``UnsupportedParameterError`` before it is sent.
    """
    _refuse_images(impl, request, ctx)
    return await _attempts(impl, request, ctx, retries, policy, monitor)


def _refuse_images(impl: Provider, request: RerankRequest, ctx: ProviderContext) -> None:
    """Image documents are dicts, so a request without ``source_documents`` has none."""
    if request.source_documents is not None:
        support = impl.capabilities(request.model).images
        refuse_images(request.documents, support, ctx.provider, ctx.model)


async def _attempts(
    impl: Provider,
    request: RerankRequest,
    ctx: ProviderContext,
    retries: int,
    policy: RetryPolicy,
    monitor: Monitor | None,
) -> RerankResponse:
    if monitor is not None:
        response = await _monitored(impl, request, ctx, retries, policy, monitor)
    else:
        try:
            response = await impl.rerank(request, ctx)
        except APIError as exc:
            response = await _retry(impl, request, ctx, retries, policy, exc)
    return _check_response(response, ctx)


def _check_response(response: object, ctx: ProviderContext) -> RerankResponse:
    """``response`` if it is a ``RerankResponse``, else ``ResponseValidationError``."""
    if not isinstance(response, RerankResponse):
        raise ResponseValidationError(
            f"provider {ctx.provider!r} returned {type(response).__name__}, not a RerankResponse",
            provider=ctx.provider,
            model=ctx.model,
        )
    return response


def _next_delay(error: APIError, attempt: int, retries: int, policy: RetryPolicy) -> float | None:
    if attempt < retries and is_retryable(error):
        return retry_delay(policy, attempt, getattr(error, "retry_after", None))
    return None


async def _retry(
    impl: Provider,
    request: RerankRequest,
    ctx: ProviderContext,
    retries: int,
    policy: RetryPolicy,
    error: APIError,
) -> RerankResponse:
    """The attempts after a first one failed with ``error``, while worth retrying."""
    attempt = 0
    while True:
        delay = _next_delay(error, attempt, retries, policy)
        if delay is None:
            raise error
        _log_retry(ctx, delay, attempt, error)
        await asyncio.sleep(delay)
        attempt += 1
        try:
            return await impl.rerank(request, ctx)
        except APIError as exc:
            error = exc


async def _monitored(
    impl: Provider,
    request: RerankRequest,
    ctx: ProviderContext,
    retries: int,
    policy: RetryPolicy,
    monitor: Monitor,
) -> RerankResponse:
    attempt = 0
    while True:
        await monitor.before()
        try:
            response = await impl.rerank(request, ctx)
        except APIError as exc:
            delay = _next_delay(exc, attempt, retries, policy)
            monitor.failed(exc, delay)
            if delay is None:
                raise
            _log_retry(ctx, delay, attempt, exc)
            await asyncio.sleep(delay)
            attempt += 1
            continue
        monitor.succeeded(response)
        return response


def _log_retry(ctx: ProviderContext, delay: float, attempt: int, error: APIError) -> None:
    logger.info(
        "retrying %s model %r in %.2f s after attempt %d failed: %s",
        ctx.provider,
        ctx.model,
        delay,
        attempt + 1,
        error,
    )


async def run_batches(
    impl: Provider,
    request: RerankRequest,
    ctx: ProviderContext,
    plan: Plan,
    *,
    retries: int,
    policy: RetryPolicy,
    concurrency: int,
    shared: asyncio.Semaphore,
    top_n: int | None,
    monitor: Callable[[RerankRequest, int], Monitor | None] | None = None,
) -> list[RerankResponse]:
    """Every batch of ``plan`` as its own request, at most ``concurrency`` at once (and at most
    what ``shared`` allows across the client). The first batch to fail after its retries fails
    the call: the others are cancelled and its error names the batch."""
    _refuse_images(impl, request, ctx)
    own = asyncio.Semaphore(concurrency)
    total = len(plan.batches)
    sources = request.source_documents if plan.owners is None else None
    aligned = [
        name for name in impl.per_document_options if isinstance(request.options.get(name), list)
    ]

    async def one(number: int, start: int, end: int) -> RerankResponse:
        options = request.options
        if aligned:
            options = {
                **options,
                **{name: _slice(options[name], plan, start, end) for name in aligned},
            }
        batch = msgspec.structs.replace(
            request,
            documents=plan.texts[start:end],
            source_documents=None if sources is None else sources[start:end],
            top_n=None if top_n is None else min(top_n, end - start),
            options=options,
        )
        watch = None if monitor is None else monitor(batch, number)
        async with own, shared:
            try:
                return await _attempts(impl, batch, ctx, retries, policy, watch)
            except APIError as exc:
                _name_batch(exc, number, total, plan, start, end)
                raise

    tasks = [
        asyncio.ensure_future(one(number, start, end))
        for number, (start, end) in enumerate(plan.batches)
    ]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _slice(values: list[object], plan: Plan, start: int, end: int) -> list[object]:
    """The per-document ``values`` of the items ``start..end`` (a chunk takes its document's)."""
    if plan.owners is None:
        return values[start:end]
    return [values[plan.owners[item]] for item in range(start, end)]


def _name_batch(exc: APIError, number: int, total: int, plan: Plan, start: int, end: int) -> None:
    """Prefix ``exc``'s message with the batch it belongs to (its class stays the same)."""
    first, last = start, end - 1
    if plan.owners is not None:
        first, last = plan.owners[start], plan.owners[end - 1]
    where = f"batch {number + 1} of {total} (documents {first}..{last})"
    exc.message = f"{where}: {exc.message}"
    exc.args = (exc.message, *exc.args[1:])
    exc.batch = number


def sum_usage(usages: Sequence[Usage]) -> Usage:
    """Field by field, the sum when every request reported it, else ``None``."""

    def total(values: list[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    return Usage(
        search_units=total([u.search_units for u in usages]),
        input_tokens=total([u.input_tokens for u in usages]),
        total_tokens=total([u.total_tokens for u in usages]),
    )
