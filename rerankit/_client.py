"""``AsyncClient``: the one hand-written client. The sync ``Client`` is generated from it."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from rerankit._dispatch import resolve_model
from rerankit._errors import (
    ConfigurationError,
    RerankitWarning,
)
from rerankit._execute import call_with_retries, run_batches, sum_usage
from rerankit._input import check_positive_int, check_query, check_timeout, prepare_documents
from rerankit._plan import collect_batches, finalize_results, plan_requests
from rerankit._registry import load_provider
from rerankit._retry import RetryPolicy
from rerankit._settings import ProviderSettings, first_env, to_settings
from rerankit._tokens import TokenCounter, TokenEstimator
from rerankit._types import Document, RerankRequest, RerankResponse
from rerankit.providers._base import Provider, ProviderContext

if TYPE_CHECKING:
    import aiohttp

    from rerankit._http import Transport

__all__ = ["AsyncClient", "arerank"]

logger = logging.getLogger("rerankit")

DEFAULT_TIMEOUT = 60.0
"""Seconds one attempt may take, connecting included."""

_CALL_OPTIONS = frozenset(
    {"api_key", "api_base", "base_url", "timeout", "max_retries", "tokenizer", "batch_concurrency"}
)
_ESTIMATOR = TokenEstimator()


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
    ) -> None:
        self._settings = {
            name: to_settings(name, value) for name, value in (providers or {}).items()
        }
        self._timeout = check_timeout(timeout)
        self._retry_policy = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self._drop_params = bool(drop_params)
        self._session = session
        self._max_connections = check_positive_int("max_connections", max_connections) or 100
        self._tokenizer = _check_tokenizer(tokenizer) or _ESTIMATOR
        self._per_call_batches = check_positive_int("batch_concurrency", batch_concurrency) or 8
        self._max_batches = check_positive_int("max_batch_concurrency", max_batch_concurrency) or 32
        self._shared_batches: asyncio.Semaphore | None = None
        self._transport: Transport | None = None
        self._instances: dict[type[Provider], Provider] = {}
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

    def _provider(self, cls: type[Provider]) -> Provider:
        instance = self._instances.get(cls)
        if instance is None:
            instance = self._instances[cls] = cls()
        return instance

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
            **kwargs: ``api_key``, ``api_base`` (or ``base_url``), ``timeout``, ``max_retries``,
                and the provider's own options (e.g. ``api_version`` for Cohere).

        Returns:
            A ``RerankResponse`` whose results are sorted by descending relevance.
        """
        if custom_llm_provider is not None:
            if provider is not None and provider != custom_llm_provider:
                raise ConfigurationError(
                    f"provider={provider!r} and custom_llm_provider={custom_llm_provider!r} "
                    "disagree; pass only provider="
                )
            provider = custom_llm_provider
        provider_name, model_name = resolve_model(model, provider)
        cls = load_provider(provider_name)
        query = check_query(query)
        docs, texts, fields = prepare_documents(documents, rank_fields)
        top_n = check_positive_int("top_n", top_n)
        if not docs:
            return RerankResponse(results=[], model=model_name, provider=provider_name)
        if top_n is not None and top_n > len(docs):
            top_n = len(docs)
        drop = self._drop_params if drop_params is None else bool(drop_params)
        impl = self._provider(cls)
        settings = self._settings.get(provider_name)
        options = _split_options(kwargs, cls, provider_name, settings, drop)
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
            max_chunks_per_doc=check_positive_int("max_chunks_per_doc", max_chunks_per_doc),
            max_tokens_per_doc=check_positive_int("max_tokens_per_doc", max_tokens_per_doc),
            instruction=_check_instruction(instruction),
            source_documents=None if texts is docs else docs,
            options=options,
        )
        ctx = ProviderContext(
            provider=provider_name,
            model=model_name,
            api_key=_api_key(kwargs, settings, cls, provider_name),
            api_base=_api_base(kwargs, settings, cls, provider_name),
            timeout=(
                check_timeout(kwargs["timeout"])
                if "timeout" in kwargs
                else (settings.timeout if settings and settings.timeout else self._timeout)
            ),
            extra_body=extra_body,
            extra_headers=_headers(settings, extra_headers),
            drop_params=drop,
            transport=self._get_transport,
        )
        if (
            request.instruction is not None
            or request.max_tokens_per_doc
            or request.max_chunks_per_doc
        ):
            native = impl.native_parameters(request, ctx)
            if request.instruction is not None and "instruction" not in native:
                ctx.unsupported("instruction")
                request.instruction = None
            window, max_chunks = _client_side_chunking(request, native)
        else:
            window = max_chunks = None
        plan = None
        if caps.has_limits or window is not None:
            if request.max_chunks_per_doc is not None:  # the provider chunks on its side
                caps = msgspec.structs.replace(caps, max_tokens_per_doc=None)
            plan = plan_requests(
                query,
                texts,
                caps,
                self._counter(kwargs),
                window=window,
                max_chunks_per_doc=max_chunks,
                model=model_name,
            )
        retries = self._retries(kwargs, settings)
        if plan is None:
            response = await call_with_retries(impl, request, ctx, retries, self._retry_policy)
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
            )
            expect_all = plan.chunked or top_n is None
            results = collect_batches(
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
        response.results = finalize_results(
            results,
            docs,
            top_n=top_n,
            return_documents=request.return_documents,
            provider=provider_name,
            model=model_name,
            expect_all=expect_all,
        )
        response.model = model_name
        response.provider = provider_name
        if response.score_kind == "unknown":
            response.score_kind = caps.score_kind
        return response

    def _counter(self, kwargs: Mapping[str, Any]) -> TokenCounter:
        tokenizer = kwargs.get("tokenizer")
        return _check_tokenizer(tokenizer) or self._tokenizer

    def _batch_concurrency(self, kwargs: Mapping[str, Any]) -> int:
        value = kwargs.get("batch_concurrency")
        return check_positive_int("batch_concurrency", value) or self._per_call_batches

    def _batch_slots(self) -> asyncio.Semaphore:
        slots = self._shared_batches
        if slots is None:
            slots = self._shared_batches = asyncio.Semaphore(self._max_batches)
        return slots

    def _retries(self, kwargs: Mapping[str, Any], settings: ProviderSettings | None) -> int:
        if "max_retries" in kwargs:
            value = kwargs["max_retries"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"max_retries must be an int >= 0, got {value!r}")
            return value
        if settings is not None and settings.max_retries is not None:
            return settings.max_retries
        return self._retry_policy.max_retries


def _client_side_chunking(
    request: RerankRequest, native: frozenset[str]
) -> tuple[int | None, int | None]:
    """Take ``max_tokens_per_doc`` / ``max_chunks_per_doc`` off ``request`` where the provider
    cannot apply them; rerankit then chunks documents itself (window, chunk cap)."""
    window = max_chunks = None
    if request.max_tokens_per_doc is not None and "max_tokens_per_doc" not in native:
        window, request.max_tokens_per_doc = request.max_tokens_per_doc, None
    if request.max_chunks_per_doc is not None and "max_chunks_per_doc" not in native:
        max_chunks, request.max_chunks_per_doc = request.max_chunks_per_doc, None
    return window, max_chunks


def _check_tokenizer(tokenizer: object) -> TokenCounter | None:
    if tokenizer is None or isinstance(tokenizer, TokenCounter):
        return tokenizer
    if hasattr(tokenizer, "encode_batch"):
        from rerankit._tokens import HFTokenizer

        return HFTokenizer(tokenizer)
    raise ConfigurationError(
        "tokenizer must be a rerankit TokenCounter (count and windows methods) or a "
        f"tokenizers.Tokenizer, got {type(tokenizer).__name__}"
    )


def _split_options(
    kwargs: dict[str, Any],
    cls: type[Provider],
    provider: str,
    settings: ProviderSettings | None,
    drop: bool,
) -> dict[str, Any]:
    """The provider's own options from ``kwargs``; anything else unknown raises or is dropped."""
    options: dict[str, Any] = dict(settings.options) if settings and settings.options else {}
    for key, value in kwargs.items():
        if key in _CALL_OPTIONS:
            continue
        if key in cls.options:
            options[key] = value
            continue
        accepted = ", ".join(sorted(cls.options)) or "none"
        message = (
            f"unknown argument {key!r} for provider {provider!r} (its own options: {accepted})"
        )
        if not drop:
            raise ConfigurationError(message + "; pass drop_params=True to drop it")
        warnings.warn(f"{message}; dropped it (drop_params=True)", RerankitWarning, 4)
    return options


def _api_key(
    kwargs: Mapping[str, Any], settings: ProviderSettings | None, cls: type[Provider], name: str
) -> str | None:
    key = kwargs.get("api_key") or (settings.api_key if settings else None)
    if key is None:
        key = first_env(cls.api_key_env)
    if key is not None and not isinstance(key, str):
        raise ConfigurationError(f"api_key for {name} must be a str")
    if not key and cls.api_key_required:
        raise ConfigurationError(_missing(name, "API key", "api_key", cls.api_key_env))
    return key or None


def _api_base(
    kwargs: Mapping[str, Any], settings: ProviderSettings | None, cls: type[Provider], name: str
) -> str | None:
    base = (
        kwargs.get("api_base")
        or kwargs.get("base_url")
        or (settings.api_base if settings else None)
    )
    if base is None:
        base = first_env(cls.api_base_env) or cls.default_api_base
    if base is not None and not isinstance(base, str):
        raise ConfigurationError(f"api_base for {name} must be a str, got {base!r}")
    if not base and cls.api_base_required:
        raise ConfigurationError(_missing(name, "base URL", "api_base", cls.api_base_env))
    return base.rstrip("/") if base else None


def _missing(name: str, what: str, argument: str, env: tuple[str, ...]) -> str:
    message = (
        f"no {what} for provider {name!r}: pass {argument}=..., or configure it with "
        f"AsyncClient(providers={{{name!r}: {{{argument!r}: ...}}}})"
    )
    if env:
        message += f", or set {' or '.join(env)}"
    return message


def _headers(
    settings: ProviderSettings | None, extra: Mapping[str, str] | None
) -> Mapping[str, str] | None:
    if settings is None or not settings.extra_headers:
        return extra
    return {**settings.extra_headers, **(extra or {})}


def _check_instruction(instruction: object) -> str | None:
    if instruction is None or isinstance(instruction, str):
        return instruction
    raise ConfigurationError(f"instruction must be a str, got {type(instruction).__name__}")


_default_clients: dict[
    asyncio.AbstractEventLoop, tuple[AsyncClient, AsyncGenerator[None, None]]
] = {}


async def default_async_client() -> AsyncClient:
    """The module-level client of the running event loop, created on first use.

    It is closed when the loop shuts down its async generators (``asyncio.run`` and
    ``asyncio.Runner`` do), so short-lived loops leave no connection pool behind.
    """
    loop = asyncio.get_running_loop()
    entry = _default_clients.get(loop)
    if entry is None:
        client = AsyncClient()
        closer = _close_at_loop_shutdown(client, loop)
        await closer.asend(None)
        entry = _default_clients[loop] = (client, closer)
    return entry[0]


async def _close_at_loop_shutdown(
    client: AsyncClient, loop: asyncio.AbstractEventLoop
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        _default_clients.pop(loop, None)
        await client.aclose()


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
