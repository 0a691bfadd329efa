"""The stages of one call to one model, in the order ``AsyncClient._rerank_one`` runs them
(docs/architecture.md, "How a call flows"): check input, prepare, cache lookup, native
parameters, plan, execute, merge and finalise, cost (then ``_cache.store``).

Each stage has one job. A stage that needs no ``await`` is a plain function, and the ones that
may move large work to a worker thread test its size first, so a small call costs no extra
coroutine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import msgspec

from rerankit._cache import ResponseCache, acache_key, lookup
from rerankit._call import Call, CallSettings
from rerankit._events import Watchers
from rerankit._execute import call_with_retries, run_batches, sum_usage
from rerankit._input import (
    DOCUMENTS_INLINE,
    PreparedDocuments,
    check_positive_int,
    check_query,
    has_images,
    prepare_documents,
    prepare_strings,
)
from rerankit._offload import in_thread, run_sized
from rerankit._plan import (
    RESULTS_INLINE,
    Plan,
    aplan_requests,
    collect_batches,
    finalize_results,
    surely_one_request,
)
from rerankit._prepare import check_instruction, client_side_chunking, provider_options
from rerankit._retry import RetryPolicy
from rerankit._targets import Target
from rerankit._tokens import TokenCounter
from rerankit._types import Document, RerankRequest, RerankResponse, RerankResult
from rerankit.providers._base import ModelCapabilities, ProviderContext

if TYPE_CHECKING:
    from rerankit._http import Transport

__all__ = [
    "Emulation",
    "Prepared",
    "Runner",
    "add_cost",
    "cache_lookup",
    "check_input",
    "execute",
    "merge_and_finalise",
    "native_parameters",
    "plan",
    "prepare",
]


class Prepared(msgspec.Struct, gc=False):
    """One call made ready for one model: what the provider gets, and what later stages need."""

    target: Target
    request: RerankRequest
    ctx: ProviderContext
    caps: ModelCapabilities
    settings: CallSettings
    docs: Sequence[Document]
    """The documents as the caller passed them (results are back-filled from them)."""


class Emulation(msgspec.Struct, frozen=True, gc=False):
    """What rerankit does itself because the provider cannot: chunk each document to
    ``window`` tokens, and keep at most ``max_chunks`` chunks of each."""

    window: int | None = None
    max_chunks: int | None = None


_NO_EMULATION = Emulation()

logger = logging.getLogger("rerankit")


async def check_input(call: Call, target: Target) -> RerankRequest:
    """The request to ``target``'s model: the query, documents (on a worker thread when there
    are many, or images to read and encode), ``top_n`` (cut to the number of documents) and
    native parameters, checked."""
    query = check_query(call.query)
    documents = call.documents
    prepared: PreparedDocuments | None = prepare_strings(documents, call.rank_fields)
    if prepared is None:
        sized = type(documents) is list or isinstance(documents, Sequence)
        if (len(documents) if sized else 0) <= DOCUMENTS_INLINE and not has_images(documents):
            prepared = prepare_documents(documents, call.rank_fields)
        else:
            prepared = await in_thread(prepare_documents, documents, call.rank_fields)
    docs, texts, fields = prepared
    request = RerankRequest(
        model=target.model,
        query=query,
        documents=texts,
        return_documents=call.return_documents,
        rank_fields=fields,
        source_documents=None if texts is docs else docs,
    )
    if call.top_n is not None:
        request.top_n = min(check_positive_int("top_n", call.top_n) or 1, len(docs))
    if call.instruction is not None:
        request.instruction = check_instruction(call.instruction)
    if call.max_tokens_per_doc is not None:
        request.max_tokens_per_doc = check_positive_int(
            "max_tokens_per_doc", call.max_tokens_per_doc
        )
    if call.max_chunks_per_doc is not None:
        request.max_chunks_per_doc = check_positive_int(
            "max_chunks_per_doc", call.max_chunks_per_doc
        )
    return request


def prepare(
    call: Call,
    target: Target,
    request: RerankRequest,
    drop: bool,
    transport: Callable[[], Transport],
) -> Prepared:
    """The provider's options (checked against the provider) and its context: key, base URL,
    timeout and headers (call > client settings > environment > default)."""
    settings = call.settings
    if call.options or (target.settings is not None and target.settings.options):
        request.options = provider_options(
            call.options, target.cls, target.provider, target.settings, drop
        )
    ctx = target.context(settings, drop, transport)
    caps = target.impl.capabilities(target.model)
    if target.overrides:
        caps = msgspec.structs.replace(caps, **target.overrides)
    docs = request.documents if request.source_documents is None else request.source_documents
    return Prepared(target, request, ctx, caps, settings, docs)


async def cache_lookup(
    cache: ResponseCache, job: Prepared, counter: TokenCounter
) -> tuple[bytes | None, RerankResponse | None]:
    """The call's cache key, and the cached answer (this call's documents back-filled) or
    ``None``. The key covers what shapes the answer: provider, model, request, base URL,
    ``extra_body``, ``drop_params``, the tokenizer and the client's capability overrides."""
    target, request, ctx = job.target, job.request, job.ctx
    settings = target.settings
    key = await acache_key(
        target.provider,
        target.model,
        request,
        api_base=ctx.api_base,
        extra_body=ctx.extra_body,
        drop_params=ctx.drop_params,
        variant=(type(counter).__name__, settings.capabilities if settings else None),
    )
    cached = await lookup(cache, key)
    if cached is not None:
        cached.results = await run_sized(
            len(cached.results), RESULTS_INLINE, _finalise, job, cached.results, False
        )
    return key, cached


def native_parameters(job: Prepared) -> Emulation:
    """Send ``instruction``, ``max_tokens_per_doc`` and ``max_chunks_per_doc`` where the
    provider takes them; refuse (or drop) an instruction it cannot take; what it cannot apply
    of the other two is taken off the request, for rerankit to emulate."""
    request = job.request
    if (
        request.instruction is None
        and request.max_tokens_per_doc is None
        and request.max_chunks_per_doc is None
    ):
        return _NO_EMULATION
    native = job.target.impl.native_parameters(request, job.ctx)
    if request.instruction is not None and "instruction" not in native:
        job.ctx.unsupported("instruction")
        request.instruction = None
    return Emulation(*client_side_chunking(request, native))


async def plan(job: Prepared, emulation: Emulation, counter: TokenCounter) -> Plan | None:
    """``None`` for one request, else the chunks and batches within the model's limits (token
    counts from ``counter``; a large input is planned on a worker thread)."""
    target, request, caps = job.target, job.request, job.caps
    if not caps.has_limits and emulation.window is None:
        return None
    if request.max_chunks_per_doc is not None:  # the provider chunks on its side
        caps = msgspec.structs.replace(caps, max_tokens_per_doc=None)
    if surely_one_request(request.query, request.documents, caps, emulation.window):
        return None  # the common case, decided from lengths alone
    return await aplan_requests(
        request.query,
        request.documents,
        caps,
        counter,
        window=emulation.window,
        max_chunks_per_doc=emulation.max_chunks,
        model=target.model,
    )


class Runner(msgspec.Struct, frozen=True):
    """How a client runs requests: its retry policy, its hooks and rate limits, the batches one
    call may have in flight, and the client-wide batch slots of the running loop."""

    policy: RetryPolicy
    watchers: Watchers
    concurrency: int
    slots: Callable[[], asyncio.Semaphore]


def execute(
    job: Prepared, plan: Plan | None, runner: Runner
) -> Awaitable[RerankResponse | list[RerankResponse]]:
    """The request (``plan`` is ``None``), or the plan's batches concurrently, each retried
    after retryable failures and watched (rate limits, hooks, debug logs) when anything
    watches. Returned unawaited: the one-request path adds no coroutine."""
    target, request, ctx, settings = job.target, job.request, job.ctx, job.settings
    retries = target.retries if settings.max_retries is None else settings.max_retries
    watch = None
    if target.watched or logger.isEnabledFor(logging.DEBUG):
        watch = runner.watchers.for_call(target.cls, target.settings, ctx, settings.tags)
    if plan is None:
        monitor = None if watch is None else watch(request, None)
        return call_with_retries(target.impl, request, ctx, retries, runner.policy, monitor)
    return run_batches(
        target.impl,
        request,
        ctx,
        plan,
        retries=retries,
        policy=runner.policy,
        concurrency=settings.batch_concurrency or runner.concurrency,
        shared=runner.slots(),
        top_n=None if plan.chunked else request.top_n,
        monitor=watch,
    )


async def merge_and_finalise(
    job: Prepared, plan: Plan | None, answer: RerankResponse | list[RerankResponse]
) -> RerankResponse:
    """One response: the batches' results merged (a document scores as its best chunk), their
    usage summed; then results validated, sorted, cut to ``top_n`` and back-filled with the
    caller's documents; model, provider and score kind filled in."""
    if isinstance(answer, RerankResponse):
        response, expect_all = answer, False
    else:
        assert plan is not None
        response = _merged(answer)
        response.results = await _collected(job, plan, answer)
        expect_all = plan.chunked or job.request.top_n is None
    results = response.results
    if len(results) <= RESULTS_INLINE:
        response.results = _finalise(job, results, expect_all)
    else:
        response.results = await in_thread(_finalise, job, results, expect_all)
    target = job.target
    response.model = target.model
    response.provider = target.provider
    if response.score_kind == "unknown":
        response.score_kind = job.caps.score_kind
    return response


def _merged(answers: list[RerankResponse]) -> RerankResponse:
    """The first batch's response, with every batch's usage and, for several, their ids."""
    response = answers[0]
    response.usage = sum_usage([answer.usage for answer in answers])
    if len(answers) > 1:
        response.provider_meta = {
            **response.provider_meta,
            "batches": len(answers),
            "request_ids": [answer.id for answer in answers],
        }
    return response


async def _collected(
    job: Prepared, plan: Plan, answers: list[RerankResponse]
) -> list[RerankResult]:
    """The batches' results as results for the caller's documents (inline while small)."""
    results = [answer.results for answer in answers]
    target = job.target
    if len(plan.texts) <= RESULTS_INLINE:
        return collect_batches(plan, results, provider=target.provider, model=target.model)
    return await in_thread(
        collect_batches, plan, results, provider=target.provider, model=target.model
    )


def _finalise(job: Prepared, results: list[RerankResult], expect_all: bool) -> list[RerankResult]:
    """``finalize_results`` for this call's request and documents."""
    request, target = job.request, job.target
    return finalize_results(
        results,
        job.docs,
        top_n=request.top_n,
        return_documents=request.return_documents,
        provider=target.provider,
        model=target.model,
        expect_all=expect_all,
        texts_only=request.source_documents is None,
    )


def add_cost(response: RerankResponse, job: Prepared, plan: Plan | None) -> None:
    """``response.cost``: its usage priced by the client's prices (batch sizes matter to
    prices per search unit)."""
    price = job.target.price
    if price is None:
        return
    texts = job.request.documents
    sizes = len(texts) if plan is None else [end - start for start, end in plan.batches]
    response.cost = price.cost(response.usage, sizes)
