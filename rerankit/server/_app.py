"""The aiohttp application: routes, the request path and the one ``AsyncClient`` it holds."""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from rerankit._client import AsyncClient
from rerankit._errors import ConfigurationError, RerankitError
from rerankit._offload import in_thread, run_sized
from rerankit._types import RerankResponse
from rerankit.server._auth import KeyRing
from rerankit.server._config import ServerConfig
from rerankit.server._errors import to_request_error
from rerankit.server._logs import mask_log_secrets
from rerankit.server._ratelimit import RateLimiter
from rerankit.server._routes import Route, build_routes, provider_settings
from rerankit.server._wire import (
    DECODE_INLINE_BYTES,
    RequestError,
    RerankCall,
    decode_v1,
    decode_v2,
    encode_error,
    encode_models,
    encode_response,
    new_request_id,
)

__all__ = ["CLIENT_KEY", "create_app"]

logger = logging.getLogger("rerankit.server")

CLIENT_KEY = web.AppKey("rerankit_client", AsyncClient)
"""The application's ``AsyncClient``, created at start-up and closed after the last request."""

_JSON = "application/json"
_REQUEST_ID = "X-Request-Id"
_RERANK_PATHS = ("/v1/rerank", "/v2/rerank", "/rerank")
_KNOWN_PATHS = {*_RERANK_PATHS, "/v1/models", "/health"}
_HEALTH = b'{"status":"ok"}'


def create_app(config: ServerConfig) -> web.Application:
    """The server as an ``aiohttp.web.Application``; raises ``ConfigurationError`` at once if
    a model, its options or its credentials are wrong."""
    mask_log_secrets()
    service = _Service(config)
    app = web.Application(client_max_size=service.max_body_bytes)
    app.router.add_post("/v1/rerank", service.rerank_v1)
    app.router.add_post("/rerank", service.rerank_v1)  # the route of LiteLLM's proxy, vLLM...
    app.router.add_post("/v2/rerank", service.rerank_v2)
    app.router.add_get("/v1/models", service.models)
    app.router.add_get("/health", service.health)
    app.router.add_route("*", "/{tail:.*}", service.not_found)
    app.cleanup_ctx.append(service.client_context)
    return app


def _reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


def _error(failure: RequestError, request_id: str | None = None) -> web.Response:
    headers = failure.headers
    if request_id is not None:
        headers = {**(headers or {}), _REQUEST_ID: request_id}
    return _reply(failure.status, encode_error(failure.message), headers)


def _failed(exc: RerankitError, route: Route | None, request_id: str) -> RequestError:
    """The client's answer to a failed call; the details go to the log under ``request_id``."""
    public = route.name if route is not None else "?"
    hidden = route.upstreams if route is not None else ()
    failure = to_request_error(exc, public, request_id, hidden)
    logger.log(
        logging.WARNING if failure.status >= 500 else logging.DEBUG,
        "request %s: rerank of model %r failed: %s; upstream %s raised %s: %s",
        request_id,
        public,
        failure.status,
        " then ".join(hidden) or "?",
        type(exc).__name__,
        exc,
    )
    return failure


class _Service:
    """The handlers and what they share: routes, keys, limits and the client."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.settings = provider_settings(config)
        self.routes: dict[str, Route] = build_routes(config, self.settings)
        self.default_model = config.server.default_model
        self.keys = KeyRing(config.client_keys())
        if not self.keys.enabled and not config.server.allow_anonymous:
            _require_loopback(config.server.host)
        rate = config.server.rate_limit
        self.limiter = RateLimiter(rate, config.server.rate_limit_burst) if rate else None
        self.max_body_bytes = max(route.max_body_bytes for route in self.routes.values())
        self.client: AsyncClient | None = None

    async def client_context(self, app: web.Application) -> AsyncIterator[None]:
        server = self.config.server
        client = AsyncClient(
            providers=self.settings,
            timeout=server.timeout,
            max_retries=server.max_retries,
            max_connections=server.max_connections,
        )
        self.client = app[CLIENT_KEY] = client
        await in_thread(int)  # load the worker threads' machinery now, not on a large request
        try:
            yield
        finally:
            self.client = None
            await client.aclose()

    async def rerank_v1(self, request: web.Request) -> web.Response:
        return await self._rerank(request, decode_v1)

    async def rerank_v2(self, request: web.Request) -> web.Response:
        return await self._rerank(request, decode_v2)

    async def _rerank(
        self, request: web.Request, decode: Callable[[bytes], RerankCall]
    ) -> web.Response:
        request_id = new_request_id()
        route = None
        try:
            self._admit(request)
            body = await self._read(request)
            call = await run_sized(len(body), DECODE_INLINE_BYTES, decode, body)
            route = self._route(call.model)
            if len(body) > route.max_body_bytes:
                raise _too_large(route.max_body_bytes, route.name)
            if len(call.documents) > route.max_documents:
                raise RequestError(
                    400,
                    f"invalid request: too many documents: {len(call.documents)}; model "
                    f"{route.name!r} takes at most {route.max_documents} per request",
                )
            response = await self._call(route, call)
        except RequestError as failure:
            return _error(failure, request_id)
        except RerankitError as exc:
            return _error(_failed(exc, route, request_id), request_id)
        except Exception:
            logger.exception(
                "request %s: unexpected error serving %s %s",
                request_id,
                request.method,
                request.path,
            )
            internal = RequestError(500, f"internal server error (request id {request_id})")
            return _error(internal, request_id)
        body = encode_response(call, response, request_id)
        return _reply(200, body, {_REQUEST_ID: request_id})

    async def _call(self, route: Route, call: RerankCall) -> RerankResponse:
        client = self.client
        if client is None:
            raise RequestError(503, "the server is shutting down")
        return await client.rerank(
            route.model,
            call.query,
            call.documents,
            top_n=call.top_n,
            rank_fields=call.rank_fields,
            return_documents=call.return_documents,
            max_chunks_per_doc=call.max_chunks_per_doc,
            max_tokens_per_doc=call.max_tokens_per_doc,
            fallbacks=route.fallbacks,
            **route.options,
        )

    def _admit(self, request: web.Request) -> None:
        """Authenticate and rate-limit; raises ``RequestError`` 401 or 429."""
        client = None
        if self.keys.enabled:
            header = request.headers.get("Authorization")
            client = self.keys.identify(header)
            if client is None:
                message = "invalid api token" if header else "no api key supplied"
                raise RequestError(401, message, {"WWW-Authenticate": "Bearer"})
        if self.limiter is not None:
            client = client or request.remote or "anonymous"
            wait = self.limiter.take(client)
            if wait:
                seconds = max(1, math.ceil(wait))
                raise RequestError(
                    429,
                    f"too many requests: the limit is {self.config.server.rate_limit:g} per "
                    f"minute; retry after {seconds} s",
                    {"Retry-After": str(seconds)},
                )

    async def _read(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large(self.max_body_bytes) from None

    def _route(self, model: str | None) -> Route:
        name = model if model is not None else self.default_model
        if name is None:
            raise RequestError(400, "invalid request: model is required")
        route = self.routes.get(name)
        if route is None:
            raise RequestError(
                404,
                f"model {name!r} not found; this server serves: {', '.join(sorted(self.routes))}",
            )
        return route

    async def models(self, request: web.Request) -> web.Response:
        try:
            self._admit(request)
        except RequestError as failure:
            return _error(failure)
        endpoint = request.query.get("endpoint")
        names = sorted(self.routes) if endpoint in (None, "rerank") else []
        return _reply(200, encode_models(names))

    async def health(self, request: web.Request) -> web.Response:
        return _reply(200, _HEALTH)

    async def not_found(self, request: web.Request) -> web.Response:
        if request.path in _KNOWN_PATHS:
            allowed = "POST" if request.path in _RERANK_PATHS else "GET"
            message = f"method {request.method} not allowed; use {allowed}"
            return _reply(405, encode_error(message), {"Allow": allowed})
        return _reply(404, encode_error(f"no route for {request.method} {request.path}"))


def _too_large(limit: int, model: str | None = None) -> RequestError:
    where = f" for model {model!r}" if model else ""
    return RequestError(413, f"request body too large: the limit{where} is {limit} bytes")


def _require_loopback(host: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"no client keys configured, so the server would accept anyone on {host}; set "
            "server.api_keys_env (or server.api_keys), or set server.allow_anonymous = true"
        )
