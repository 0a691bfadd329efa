"""``AsyncClient``: the one hand-written client. The sync ``Client`` is generated from it."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from asyncio import _get_running_loop
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rerankit._cache import ResponseCache, store
from rerankit._call import NO_OPTIONS, NO_SETTINGS, NOT_GIVEN, Call, call_settings
from rerankit._check import ModelCheck, check_target, provider_argument
from rerankit._cost import PricesSpec, PriceTable, resolve_prices
from rerankit._errors import APIError, ConfigurationError, RerankitError
from rerankit._events import EventHook, Watchers
from rerankit._fallback import ClientFallbacks, Fallback, FallbackSpec, falls_back
from rerankit._input import check_positive_int, check_timeout
from rerankit._lifetimes import PerLoop, PerProcess, running_loop
from rerankit._many import ProgressCallback, RerankJob, job_arguments, run_many, to_jobs
from rerankit._prepare import check_tokenizer
from rerankit._quota import QuotaBackend
from rerankit._retry import RetryPolicy
from rerankit._settings import ProviderSettings, settings_map
from rerankit._stages import (
    Runner,
    add_cost,
    cache_lookup,
    check_input,
    execute,
    merge_and_finalise,
    native_parameters,
    plan,
    prepare,
)
from rerankit._targets import Targets
from rerankit._tokens import TokenCounter, TokenEstimator
from rerankit._types import Document, RerankResponse

if TYPE_CHECKING:
    import aiohttp

    from rerankit._http import Transport

__all__ = ["AsyncClient", "arerank", "arerank_many"]

logger = logging.getLogger("rerankit")

DEFAULT_TIMEOUT = 60.0
"""Seconds one attempt may take, connecting included."""

_ESTIMATOR = TokenEstimator()

_FIRST_TRANSPORT: PerProcess[threading.Lock] = PerProcess(threading.Lock)
"""Held while a client makes its transport, so threads racing to make it share one."""


class AsyncClient:
    """Reranks through any provider; holds configuration and one connection pool.

    Use it as ``async with AsyncClient() as client: await client.rerank(...)``, or call
    ``aclose()`` when done. One client belongs to one event loop at a time.

    Args:
        providers: per-provider settings, ``{"cohere": {"api_key": ..., "api_base": ...}}``
            or ``ProviderSettings`` values.
        timeout: seconds one attempt may take (``None``: no limit).
        max_retries: retries after the first attempt, for retryable failures.
        retry: the full retry policy (overrides ``max_retries``).
        drop_params: drop parameters a provider cannot honour (with a warning) instead of raising.
        session: an aiohttp session to use; rerankit will not close it.
        max_connections: size of the connection pool.
        tokenizer: counts tokens when planning batches and chunks (default: a conservative
            estimate); e.g. ``HFTokenizer(tokenizers.Tokenizer.from_file(...))``.
        batch_concurrency: requests one call split into batches may have in flight.
        max_batch_concurrency: batch requests in flight across all calls of this client.
        fallbacks: models to try when a call's model fails with a retryable error: a list for
            every model, or ``{"cohere/rerank-v3.5": [...], "*": [...]}`` per model.
        hooks: callbacks receiving a ``RerankEvent`` for each request, response, retry and
            error (inline: keep them quick).
        prices: price overrides (``{"cohere/rerank-v3.5": {"per_search_unit": 0.0015}}``), a
            JSON price file, or a ``PriceTable``; ``response.cost`` is computed from them.
        cache: a ``MemoryCache`` or ``SQLiteCache`` (any ``ResponseCache``): identical calls
            are answered from it without a request. The caller owns it (it is not closed).
        quota: where the rate-limit buckets live (requests and tokens per minute per provider
            and key): by default in this client; ``rerankit.ray.ClusterQuota(...)`` shares
            them across a Ray cluster. Any ``QuotaBackend`` works.
    """

    def __init__(
        self,
        *,
        providers: Mapping[str, ProviderSettings | Mapping[str, Any]] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry: RetryPolicy | None = None,
        drop_params: bool = False,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = 100,
        tokenizer: TokenCounter | None = None,
        batch_concurrency: int = 8,
        max_batch_concurrency: int = 32,
        fallbacks: Sequence[FallbackSpec] | Mapping[str, Sequence[FallbackSpec]] | None = None,
        hooks: Sequence[EventHook] | None = None,
        prices: PriceTable | PricesSpec | str | os.PathLike[str] | None = None,
        cache: ResponseCache | None = None,
        quota: QuotaBackend | None = None,
    ) -> None:
        self._settings = settings_map(providers)
        self._timeout = check_timeout(timeout)
        self._retry_policy = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self._drop_params = bool(drop_params)
        self._session = session
        self._max_connections = check_positive_int("max_connections", max_connections) or 100
        self._tokenizer = check_tokenizer(tokenizer) or _ESTIMATOR
        self._per_call_batches = check_positive_int("batch_concurrency", batch_concurrency) or 8
        self._max_batches = check_positive_int("max_batch_concurrency", max_batch_concurrency) or 32
        self._shared_batches = PerLoop(lambda: asyncio.Semaphore(self._max_batches))
        self._fallbacks = ClientFallbacks(fallbacks)
        self._watchers = Watchers(hooks, quota)
        self._runner = Runner(
            self._retry_policy, self._watchers, self._per_call_batches, self._shared_batches.get
        )
        self._prices = None if prices is None else resolve_prices(prices)
        if cache is not None and not isinstance(cache, ResponseCache):
            raise ConfigurationError(
                "cache must be a MemoryCache, SQLiteCache or ResponseCache, "
                f"got {type(cache).__name__}"
            )
        self._cache = cache
        self._transport: Transport | None = None
        self._targets = Targets(
            self._settings,
            timeout=self._timeout,
            policy=self._retry_policy,
            prices=self._prices,
            hooked=bool(self._watchers.hooks),
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"AsyncClient(providers={sorted(self._settings)}, timeout={self._timeout!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (a session passed in by the caller stays open)."""
        self._closed = True
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()

    def _get_transport(self) -> Transport:
        transport = self._transport
        if transport is None:
            from rerankit._http import Transport

            with _FIRST_TRANSPORT.get():  # two threads' loops at once still share one pool
                if self._closed:
                    raise ConfigurationError("this client is closed; create a new one")
                transport = self._transport
                if transport is None:
                    transport = self._transport = Transport(
                        session=self._session, max_connections=self._max_connections
                    )
        return transport

    async def rerank(
        self,
        model: str,
        query: str,
        documents: Sequence[Document],
        custom_llm_provider: str | None = None,
        top_n: int | None = None,
        rank_fields: list[str] | None = None,
        return_documents: bool = True,
        max_chunks_per_doc: int | None = None,
        max_tokens_per_doc: int | None = None,
        *,
        provider: str | None = None,
        instruction: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        drop_params: bool | None = None,
        fallbacks: Sequence[FallbackSpec] | None = None,
        metadata: Mapping[str, Any] | list[str] | None = None,
        user: str | None = None,
        num_retries: int | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> RerankResponse:
        """Rank ``documents`` by relevance to ``query`` with ``model``.

        Args:
            model: ``"<provider>/<model>"``, e.g. ``"cohere/rerank-v3.5"`` or ``"local/bm25"``.
            query: the search query.
            documents: strings, or dicts ranked on ``rank_fields`` (or their ``text`` field).
            custom_llm_provider: LiteLLM's name for ``provider``.
            top_n: keep only the best ``top_n`` results (clamped to the number of documents).
            rank_fields: the dict fields to rank on, in order.
            return_documents: attach each result's document (``{"text": ...}`` or your dict).
            max_chunks_per_doc: server-side chunking, where the provider offers it.
            max_tokens_per_doc: truncate each document to this many tokens, where offered.
            provider: the provider name, overriding the model string's prefix.
            instruction: a ranking instruction, for models that take one.
            extra_body: raw JSON fields merged into the provider request.
            extra_headers: extra HTTP headers for the provider request.
            drop_params: drop unsupported parameters with a warning instead of raising.
            fallbacks: models to try in order when this one fails after its retries with a
                retryable error (connection, timeout, 408, 409, 429, 5xx), overriding the
                client's; ``[]`` turns them off. See ``docs/production.md``.
            metadata: a dict handed to hooks in every ``RerankEvent`` of this call (never
                sent); a list goes to the provider as its per-document ``metadata`` option.
            user: your end user's id, handed to hooks in every ``RerankEvent`` (never sent).
            num_retries: LiteLLM's name for ``max_retries``.
            options: the provider's own options (e.g. ``{"api_version": 1}`` for Cohere), even
                one named like a call setting; a name may not also be given in ``**kwargs``.
            **kwargs: the call settings ``api_key``, ``api_base`` (or ``base_url``),
                ``timeout``, ``max_retries``, ``tokenizer`` and ``batch_concurrency``; any other
                name is a provider option, except LiteLLM's logging arguments, which are
                accepted and ignored (``litellm_call_id``...; see ``docs/migrating.md``).

        Returns:
            A ``RerankResponse`` whose results are sorted by descending relevance;
            ``provider``/``model`` name the model that answered, ``fallback_from`` the ones
            that failed before it.
        """
        if _get_running_loop() is None:
            running_loop()  # rerankit runs on asyncio: a clear error under trio
        given = (options, extra_body, extra_headers, drop_params, metadata, user, num_retries)
        if kwargs or given != NOT_GIVEN:
            settings, provider_options = call_settings(kwargs, *given)
        else:
            settings, provider_options = NO_SETTINGS, NO_OPTIONS
        call = Call(
            model=model,
            provider=provider_argument(provider, custom_llm_provider),
            query=query,
            documents=documents,
            rank_fields=rank_fields,
            top_n=top_n,
            return_documents=bool(return_documents),
            instruction=instruction,
            max_tokens_per_doc=max_tokens_per_doc,
            max_chunks_per_doc=max_chunks_per_doc,
            settings=settings,
            options=provider_options,
        )
        if fallbacks is not None or self._fallbacks.chains:
            chain = self._fallbacks.chain(call.model, call.provider, fallbacks)
            if chain:
                return await self._with_fallbacks(call, chain)
        return await self._rerank_one(call)

    async def _with_fallbacks(self, call: Call, chain: Sequence[Fallback]) -> RerankResponse:
        """``call``, then each fallback in turn while the failures are ones that move on."""
        try:
            return await self._rerank_one(call)
        except APIError as exc:
            if not falls_back(exc):
                raise
            error = exc
        failed = [call.label]
        for fallback in chain:
            logger.warning("%s failed (%s); falling back to %s", failed[-1], error, fallback.model)
            try:
                response = await self._rerank_one(call.for_fallback(fallback))
            except APIError as exc:
                if not falls_back(exc):
                    raise
                failed.append(fallback.model)
                error = exc
                continue
            response.fallback_from = failed
            return response
        raise error

    async def _rerank_one(self, call: Call) -> RerankResponse:
        """One model, no fallbacks: the stages of "How a call flows" (docs/architecture.md)."""
        target = self._targets.get(call.model, call.provider)  # resolve
        request = await check_input(call, target)
        if not request.documents:
            return RerankResponse(results=[], model=target.model, provider=target.provider)
        settings = call.settings
        drop = self._drop_params if settings.drop_params is None else settings.drop_params
        job = prepare(call, target, request, drop, self._get_transport)
        counter = settings.tokenizer or self._tokenizer
        cache, key = self._cache, None
        if cache is not None:
            key, cached = await cache_lookup(cache, job, counter)
            if cached is not None:
                return cached
        emulation = native_parameters(job)
        batches = await plan(job, emulation, counter)
        answer = await execute(job, batches, self._runner)
        response = await merge_and_finalise(job, batches, answer)
        add_cost(response, job, batches)
        if cache is not None and key is not None:
            await store(cache, key, response)
        return response

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache this client uses (``None``: no caching); see its ``stats``."""
        return self._cache

    def check(
        self,
        model: str,
        *,
        provider: str | None = None,
        custom_llm_provider: str | None = None,
        drop_params: bool | None = None,
        **kwargs: Any,
    ) -> ModelCheck:
        """Resolve ``model`` as ``rerank`` would, without calling the provider.

        Takes the model string and the keyword arguments of ``rerank`` that decide where a
        call goes (``provider``, ``api_key``, ``api_base``, provider options...). Returns a
        ``ModelCheck``: provider, model, base URL, where the credentials come from, limits,
        score kind, timeout, retries and price, secrets masked. Raises what the call would
        raise for the same model and arguments: ``UnknownProviderError``, or
        ``ConfigurationError`` for an unknown option, a bad base URL, timeout or retry count,
        or a missing key (naming its environment variables).
        """
        target = self._targets.get(model, provider_argument(provider, custom_llm_provider))
        drop = self._drop_params if drop_params is None else bool(drop_params)
        return check_target(target, kwargs, drop=drop)

    async def rerank_many(
        self,
        model: str,
        jobs: Iterable[RerankJob | Sequence[Any] | Mapping[str, Any]],
        *,
        top_n: int | None = None,
        concurrency: int = 8,
        on_progress: ProgressCallback | None = None,
        **kwargs: Any,
    ) -> list[RerankResponse | RerankitError]:
        """Rerank many ``(query, documents)`` jobs with one model, in parallel.

        Args:
            model: the model string, as for ``rerank``.
            jobs: ``(query, documents)`` or ``(query, documents, top_n)`` pairs, dicts with
                ``query``, ``documents`` (and ``top_n``, ``metadata``, ``user``), or
                ``RerankJob`` values. A job's ``metadata`` is merged over the call's.
            top_n: the cut-off for jobs that give none.
            concurrency: jobs in flight at once.
            on_progress: called as ``on_progress(done, total)`` after each job ends.
            **kwargs: anything ``rerank`` takes, applied to every job.

        Returns:
            One entry per job, in job order: its ``RerankResponse``, or the ``RerankitError``
            it failed with (the other jobs still run).
        """
        running_loop()  # rerankit runs on asyncio: a clear error under trio
        parsed = to_jobs(jobs)
        limit = check_positive_int("concurrency", concurrency) or 8

        async def call(job: RerankJob) -> RerankResponse:
            cut = job.top_n if job.top_n is not None else top_n
            arguments = job_arguments(job, kwargs)
            return await self.rerank(model, job.query, job.documents, top_n=cut, **arguments)

        return await run_many(parsed, call, limit, on_progress)


async def _close_default(client: AsyncClient) -> None:
    await client.aclose()


_default_clients: PerLoop[AsyncClient] = PerLoop(AsyncClient, close=_close_default)
"""The module-level client of each event loop, closed when the loop shuts down."""


async def default_async_client() -> AsyncClient:
    """The module-level client of the running event loop, created on first use.

    It is closed when the loop shuts down its async generators (``asyncio.run`` and
    ``asyncio.Runner`` do), so short-lived loops leave no connection pool behind.
    """
    return _default_clients.get()


async def arerank(
    model: str,
    query: str,
    documents: Sequence[Document],
    custom_llm_provider: str | None = None,
    top_n: int | None = None,
    rank_fields: list[str] | None = None,
    return_documents: bool = True,
    max_chunks_per_doc: int | None = None,
    max_tokens_per_doc: int | None = None,
    **kwargs: Any,
) -> RerankResponse:
    """Rerank with the default client of the running loop; see ``AsyncClient.rerank``."""
    client = await default_async_client()
    return await client.rerank(
        model,
        query,
        documents,
        custom_llm_provider,
        top_n,
        rank_fields,
        return_documents,
        max_chunks_per_doc,
        max_tokens_per_doc,
        **kwargs,
    )


async def arerank_many(
    model: str,
    jobs: Iterable[RerankJob | Sequence[Any] | Mapping[str, Any]],
    **kwargs: Any,
) -> list[RerankResponse | RerankitError]:
    """``rerank_many`` with the default client of the running loop; see
    ``AsyncClient.rerank_many``."""
    client = await default_async_client()
    return await client.rerank_many(model, jobs, **kwargs)
