"""``AsyncClient``: the one hand-written client. The sync ``Client`` is generated from it."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from rerankit._cache import ResponseCache, acache_key, lookup, store
from rerankit._check import ModelCheck, check_target, provider_argument
from rerankit._cost import PricesSpec, PriceTable, resolve_prices
from rerankit._errors import APIError, ConfigurationError, RerankitError
from rerankit._events import EventHook, Watchers, call_tags
from rerankit._execute import call_with_retries, run_batches, sum_usage
from rerankit._fallback import ClientFallbacks, FallbackSpec, falls_back
from rerankit._input import aprepare_documents, check_positive_int, check_query, check_timeout
from rerankit._lifetimes import PerLoop, running_loop
from rerankit._many import ProgressCallback, RerankJob, job_arguments, run_many, to_jobs
from rerankit._plan import acollect_batches, afinalize_results, aplan_requests
from rerankit._prepare import (
    check_extra_body,
    check_instruction,
    check_tokenizer,
    client_side_chunking,
    split_options,
)
from rerankit._quota import QuotaBackend
from rerankit._retry import RetryPolicy
from rerankit._settings import ProviderSettings, settings_map
from rerankit._targets import Targets
from rerankit._tokens import TokenCounter, TokenEstimator
from rerankit._types import Document, RerankRequest, RerankResponse
from rerankit.providers._base import ProviderContext

if TYPE_CHECKING:
    import aiohttp

    from rerankit._http import Transport

__all__ = ["AsyncClient", "arerank", "arerank_many"]

logger = logging.getLogger("rerankit")

DEFAULT_TIMEOUT = 60.0
"""Seconds one attempt may take, connecting included."""

_ESTIMATOR = TokenEstimator()


def _take_num_retries(kwargs: dict[str, Any], num_retries: object) -> None:
    """LiteLLM's ``num_retries`` as ``max_retries`` in a call's ``kwargs``."""
    if isinstance(num_retries, bool) or not isinstance(num_retries, int) or num_retries < 0:
        raise ConfigurationError(f"num_retries must be an int >= 0, got {num_retries!r}")
    if kwargs.setdefault("max_retries", num_retries) != num_retries:
        raise ConfigurationError(
            f"num_retries={num_retries!r} and max_retries={kwargs['max_retries']!r} disagree; "
            "num_retries is LiteLLM's name for max_retries: pass one of them"
        )


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
            if self._closed:
                raise ConfigurationError("this client is closed; create a new one")
            from rerankit._http import Transport

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
            **kwargs: ``api_key``, ``api_base`` (or ``base_url``), ``timeout``, ``max_retries``,
                the provider's own options (e.g. ``api_version`` for Cohere), and LiteLLM's
                logging arguments, which are accepted and ignored (``litellm_call_id``...;
                see ``docs/migrating.md``).

        Returns:
            A ``RerankResponse`` whose results are sorted by descending relevance;
            ``provider``/``model`` name the model that answered, ``fallback_from`` the ones
            that failed before it.
        """
        running_loop()  # rerankit runs on asyncio: a clear error under trio
        if isinstance(metadata, list):  # a provider's per-document option (contextual)
            kwargs["metadata"], metadata = metadata, None
        tags = call_tags(metadata, user)
        if num_retries is not None:
            _take_num_retries(kwargs, num_retries)
        chain = self._fallbacks.chain(model, provider or custom_llm_provider, fallbacks)
        try:
            return await self._rerank_one(
                model,
                query,
                documents,
                custom_llm_provider,
                top_n,
                rank_fields,
                return_documents,
                max_chunks_per_doc,
                max_tokens_per_doc,
                provider,
                instruction,
                extra_body,
                extra_headers,
                drop_params,
                kwargs,
                tags,
            )
        except APIError as exc:
            if not chain or not falls_back(exc):
                raise
            error = exc
        failed = [model if provider is None else f"{provider}/{model}"]
        for target in chain:
            logger.warning("%s failed (%s); falling back to %s", failed[-1], error, target.model)
            try:
                response = await self._rerank_one(
                    target.model,
                    query,
                    documents,
                    None,
                    top_n,
                    rank_fields,
                    return_documents,
                    max_chunks_per_doc,
                    max_tokens_per_doc,
                    None,
                    instruction,
                    None,
                    None,
                    True,
                    dict(target.options),
                    tags,
                )
            except APIError as exc:
                if not falls_back(exc):
                    raise
                failed.append(target.model)
                error = exc
                continue
            response.fallback_from = failed
            return response
        raise error

    async def _rerank_one(
        self,
        model: str,
        query: str,
        documents: Sequence[Document],
        custom_llm_provider: str | None,
        top_n: int | None,
        rank_fields: list[str] | None,
        return_documents: bool,
        max_chunks_per_doc: int | None,
        max_tokens_per_doc: int | None,
        provider: str | None,
        instruction: str | None,
        extra_body: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        drop_params: bool | None,
        kwargs: dict[str, Any],
        tags: Mapping[str, Any] | None,
    ) -> RerankResponse:
        """One model, no fallbacks: plan, call (with retries), merge."""
        if custom_llm_provider is not None:
            if provider is not None and provider != custom_llm_provider:
                raise ConfigurationError(
                    f"provider={provider!r} and custom_llm_provider={custom_llm_provider!r} "
                    "disagree; pass only provider="
                )
            provider = custom_llm_provider
        target = self._targets.get(model, provider)
        provider_name, model_name, cls = target.provider, target.model, target.cls
        query = check_query(query)
        docs, texts, fields = await aprepare_documents(documents, rank_fields)
        if top_n is not None:
            top_n = check_positive_int("top_n", top_n)
        if not docs:
            return RerankResponse(results=[], model=model_name, provider=provider_name)
        if top_n is not None and top_n > len(docs):
            top_n = len(docs)
        drop = self._drop_params if drop_params is None else bool(drop_params)
        impl, settings = target.impl, target.settings
        caps = impl.capabilities(model_name)
        if settings is not None and settings.capabilities:
            caps = msgspec.structs.replace(caps, **settings.capabilities)
        request = RerankRequest(
            model=model_name,
            query=query,
            documents=texts,
            top_n=top_n,
            return_documents=bool(return_documents),
            rank_fields=fields,
            source_documents=None if texts is docs else docs,
        )
        if kwargs or (settings is not None and settings.options):
            request.options = split_options(kwargs, cls, provider_name, settings, drop)
        if max_chunks_per_doc is not None:
            request.max_chunks_per_doc = check_positive_int(
                "max_chunks_per_doc", max_chunks_per_doc
            )
        if max_tokens_per_doc is not None:
            request.max_tokens_per_doc = check_positive_int(
                "max_tokens_per_doc", max_tokens_per_doc
            )
        if instruction is not None:
            request.instruction = check_instruction(instruction)
        if extra_body is not None:
            extra_body = check_extra_body(extra_body)
        ctx = ProviderContext(
            provider=provider_name,
            model=model_name,
            api_key=target.api_key(kwargs),
            api_base=target.api_base(kwargs),
            timeout=check_timeout(kwargs["timeout"]) if "timeout" in kwargs else target.timeout,
            extra_body=extra_body,
            extra_headers=target.headers(extra_headers),
            drop_params=drop,
            transport=self._get_transport,
        )
        key = None
        if self._cache is not None:
            variant = (
                type(self._counter(kwargs)).__name__,
                settings.capabilities if settings else None,
            )
            key = await acache_key(
                provider_name,
                model_name,
                request,
                api_base=ctx.api_base,
                extra_body=extra_body,
                drop_params=drop,
                variant=variant,
            )
            cached = await lookup(self._cache, key)
            if cached is not None:
                cached.results = await afinalize_results(
                    cached.results,
                    docs,
                    top_n=top_n,
                    return_documents=request.return_documents,
                    provider=provider_name,
                    model=model_name,
                    texts_only=texts is docs,
                )
                return cached
        if (
            request.instruction is not None
            or request.max_tokens_per_doc
            or request.max_chunks_per_doc
        ):
            native = impl.native_parameters(request, ctx)
            if request.instruction is not None and "instruction" not in native:
                ctx.unsupported("instruction")
                request.instruction = None
            window, max_chunks = client_side_chunking(request, native)
        else:
            window = max_chunks = None
        plan = None
        if caps.has_limits or window is not None:
            if request.max_chunks_per_doc is not None:  # the provider chunks on its side
                caps = msgspec.structs.replace(caps, max_tokens_per_doc=None)
            plan = await aplan_requests(
                query,
                texts,
                caps,
                self._counter(kwargs) if kwargs else self._tokenizer,
                window=window,
                max_chunks_per_doc=max_chunks,
                model=model_name,
            )
        retries = self._retries(kwargs, target.retries) if kwargs else target.retries
        watch = (
            self._watchers.for_call(cls, settings, ctx, tags)
            if target.watched or logger.isEnabledFor(logging.DEBUG)
            else None
        )
        if plan is None:
            monitor = None if watch is None else watch(request, None)
            response = await call_with_retries(
                impl, request, ctx, retries, self._retry_policy, monitor
            )
            results = response.results
            expect_all = False
        else:
            answers = await run_batches(
                impl,
                request,
                ctx,
                plan,
                retries=retries,
                policy=self._retry_policy,
                concurrency=self._batch_concurrency(kwargs),
                shared=self._batch_slots(),
                top_n=None if plan.chunked else top_n,
                monitor=watch,
            )
            expect_all = plan.chunked or top_n is None
            results = await acollect_batches(
                plan,
                [answer.results for answer in answers],
                provider=provider_name,
                model=model_name,
            )
            response = answers[0]
            response.usage = sum_usage([answer.usage for answer in answers])
            if len(answers) > 1:
                response.provider_meta = {
                    **response.provider_meta,
                    "batches": len(answers),
                    "request_ids": [answer.id for answer in answers],
                }
        response.results = await afinalize_results(
            results,
            docs,
            top_n=top_n,
            return_documents=request.return_documents,
            provider=provider_name,
            model=model_name,
            expect_all=expect_all,
            texts_only=texts is docs,
        )
        response.model = model_name
        response.provider = provider_name
        if response.score_kind == "unknown":
            response.score_kind = caps.score_kind
        if target.price is not None:
            sizes = len(texts) if plan is None else [end - start for start, end in plan.batches]
            response.cost = target.price.cost(response.usage, sizes)
        if key is not None and self._cache is not None:
            await store(self._cache, key, response)
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

    def _counter(self, kwargs: Mapping[str, Any]) -> TokenCounter:
        tokenizer = kwargs.get("tokenizer")
        return check_tokenizer(tokenizer) or self._tokenizer

    def _batch_concurrency(self, kwargs: Mapping[str, Any]) -> int:
        value = kwargs.get("batch_concurrency")
        return check_positive_int("batch_concurrency", value) or self._per_call_batches

    def _batch_slots(self) -> asyncio.Semaphore:
        return self._shared_batches.get()

    @staticmethod
    def _retries(kwargs: Mapping[str, Any], default: int) -> int:
        if "max_retries" not in kwargs:
            return default
        value = kwargs["max_retries"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {value!r}")
        return value


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
