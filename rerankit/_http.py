"""HTTP transport: session ownership, the JSON POST helper and transport-error mapping.

This module imports aiohttp, so the client imports it only on the first HTTP call.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec

from rerankit._deadlines import Deadlines, loop_deadlines, own_task
from rerankit._errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    status_error_class,
)
from rerankit._lifetimes import PerLoop
from rerankit._redact import mask_url, redact_all, secrets, shown_url
from rerankit._retry import parse_retry_after
from rerankit._version import __version__

__all__ = ["HTTPResponse", "Transport"]

logger = logging.getLogger("rerankit")

USER_AGENT = f"rerankit/{__version__}"
_MAX_ERROR_BODY = 2000
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-trace-id")


class HTTPResponse:
    """A successful answer: status, headers and the raw body bytes."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Connector(aiohttp.TCPConnector):
    """A connector that never reuses a pooled connection holding data nobody asked for.

    aiohttp checks only that a pooled connection is still open; an answer a server sent on it
    while idle would be read as the next request's. Such a connection is closed instead.
    """

    async def _get(self, *args: Any, **kwargs: Any) -> Any:
        while True:
            connection: Any = await super()._get(*args, **kwargs)
            protocol = getattr(connection, "protocol", None)
            if protocol is None or not protocol.should_close:
                return connection
            connection.close()


class _Slots:
    """Connection slots, handed out in arrival order; taking a free one does not suspend."""

    __slots__ = ("_waiters", "free")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take_now(self) -> bool:
        """Take a slot if one is free and nobody is waiting for one."""
        if self.free and not self._waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait in line for a slot."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot while being cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Return a slot: to the first caller in line, else to the free ones."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class _LoopPool:
    """A transport's connections on one event loop: the session and its slots."""

    __slots__ = ("deadlines", "owned", "session", "slots")

    def __init__(
        self, session: aiohttp.ClientSession, owned: bool, slots: _Slots, deadlines: Deadlines
    ) -> None:
        self.session = session
        self.owned = owned
        self.slots = slots
        self.deadlines = deadlines


class Transport:
    """One aiohttp session per event loop, created lazily, shared by every call of a client.

    A session is closed when its loop shuts down (``asyncio.run`` does that); one whose loop
    was closed without shutting down has its sockets closed without that loop when rerankit
    notices (see ``_lifetimes``), so a client used from successive loops keeps no old
    connections. Calls beyond the pool's size wait their turn in order, before their timeout
    starts.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = 100,
        max_connections_per_host: int = 0,
    ) -> None:
        self._session = session
        self._max_connections = max_connections
        self._max_connections_per_host = max_connections_per_host
        self._pools: PerLoop[_LoopPool] = PerLoop(
            self._open, close=_close_pool, discard=_discard_pool
        )
        self._timeouts: dict[tuple[float | None, bool], aiohttp.ClientTimeout] = {}

    def _open(self) -> _LoopPool:
        """A session (the caller's, or a new one), slots and deadlines for the running loop."""
        slots, deadlines = _Slots(self._max_connections), loop_deadlines()
        if self._session is not None:
            return _LoopPool(self._session, False, slots, deadlines)
        session = aiohttp.ClientSession(
            connector=_Connector(
                limit=self._max_connections,
                limit_per_host=self._max_connections_per_host,
                ttl_dns_cache=300,
            ),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
        return _LoopPool(session, True, slots, deadlines)

    def _timeout(self, seconds: float | None, total: bool) -> aiohttp.ClientTimeout:
        """aiohttp's limits for one attempt: connecting a new socket, and (``total``) the whole
        attempt, for the rare call outside a task that ``Deadlines`` cannot cancel."""
        timeout = self._timeouts.get((seconds, total))
        if timeout is None:
            connect = None if seconds is None else min(seconds, 10.0)
            timeout = aiohttp.ClientTimeout(total=seconds if total else None, sock_connect=connect)
            self._timeouts[seconds, total] = timeout
        return timeout

    @own_task
    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float | None,
        provider: str,
        model: str,
        secret: str | None,
    ) -> HTTPResponse:
        """POST ``body``; map every transport failure and non-2xx status to a rerankit error."""
        pool = self._pools.get()
        slots, deadlines = pool.slots, pool.deadlines
        if not slots.take_now():
            await slots.take()
        task = None
        if timeout is not None:
            task = asyncio.current_task()
            if task is not None:
                deadlines.start(task, timeout)
        error: Exception | None = None
        try:
            async with pool.session.post(
                url,
                data=body,
                headers=headers,
                timeout=self._timeout(timeout, total=task is None),
            ) as resp:
                data = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except asyncio.CancelledError:
            if task is None or not deadlines.stop(task):
                raise  # cancelled by the caller, not by the deadline
            error = _timed_out(provider, model, timeout)
        except asyncio.TimeoutError:  # aiohttp's limits: connecting, or outside a task
            error = _timed_out(provider, model, timeout)
        except (aiohttp.ClientError, OSError, UnicodeError) as exc:
            error = _transport_error(exc, url, headers, provider, model, secret)
        finally:
            if task is not None:
                deadlines.stop(task)
            slots.give()
        if error is not None:  # raised here, not in the handler: nothing of aiohttp's is chained
            raise error
        if status >= 400:
            raise _status_error(
                status, resp_headers, data, provider, model, secrets(headers, secret)
            )
        return HTTPResponse(status, resp_headers, data)

    async def aclose(self) -> None:
        """Close the sessions this transport created (a caller's own session is left open):
        now on the running loop and on closed loops, soon on loops running in other threads.
        A loop that is neither closes its session when it shuts down or is found closed."""
        here = asyncio.get_running_loop()
        for loop in self._pools.loops():
            if loop is here:
                pool = self._pools.pop(loop)
                if pool is not None:
                    await _close_pool(pool)
            elif loop.is_closed():
                pool = self._pools.pop(loop)
                if pool is not None:
                    _discard_pool(pool)
            elif loop.is_running():
                pool = self._pools.pop(loop)
                if pool is not None and pool.owned:
                    asyncio.run_coroutine_threadsafe(pool.session.close(), loop)


async def _close_pool(pool: _LoopPool) -> None:
    if pool.owned:
        await pool.session.close()


def _discard_pool(pool: _LoopPool) -> None:
    """Close the sockets of a session whose loop was closed without closing it.

    The dead loop can no longer run aiohttp's close, so each connection's socket is closed
    directly, as the loop would have done, and the connector is then marked closed (it
    forgets its connections and warns about none).
    """
    if not pool.owned:
        return
    connector = pool.session.connector
    if connector is None or connector.closed:
        return
    conns: Any = getattr(connector, "_conns", {})
    acquired: Any = getattr(connector, "_acquired", ())
    protocols = [proto for entries in conns.values() for proto, _ in entries]
    for proto in [*protocols, *acquired]:
        _close_socket(getattr(proto, "transport", None))
    connector._close()


def _close_socket(transport: Any) -> None:
    """Close the socket under ``transport`` (TLS unwrapped) and drop the transport's hold on
    it, without its event loop."""
    while transport is not None and not hasattr(transport, "_sock"):
        transport = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    if transport is None or transport._sock is None:
        return
    try:
        transport._call_connection_lost(None)  # what the loop runs after close(): sock.close()
    except Exception:  # the protocol's callback needed the loop; the socket is closed anyway
        logger.debug("closing a connection of a closed loop", exc_info=True)


def _timed_out(provider: str, model: str, timeout: float | None) -> APITimeoutError:
    return APITimeoutError(
        f"{provider} did not answer within {timeout} s (model {model!r})",
        provider=provider,
        model=model,
    )


def _transport_error(
    exc: BaseException,
    url: str,
    headers: Mapping[str, str],
    provider: str,
    model: str,
    secret: str | None,
) -> Exception:
    """The rerankit error for a failed request. aiohttp's exception is not chained: some carry
    the request's headers (``ClientResponseError.request_info``), so only its redacted text is
    kept. A URL aiohttp cannot use (or whose host name cannot be encoded) is a configuration
    error, not worth a retry."""
    reason = mask_url(redact_all(f"{type(exc).__name__}: {exc}", secrets(headers, secret)))
    if isinstance(exc, (aiohttp.InvalidURL, UnicodeError)):
        return ConfigurationError(
            f"{provider} cannot send to {shown_url(url)} (model {model!r}): {reason}; "
            "check api_base and the provider options"
        )
    return APIConnectionError(
        f"could not reach {provider} (model {model!r}): {reason}", provider=provider, model=model
    )


def _status_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    provider: str,
    model: str,
    hidden: list[str],
) -> Exception:
    text = redact_all(body[:_MAX_ERROR_BODY].decode("utf-8", "replace"), hidden)
    detail = redact_all(_error_detail(body), hidden) or (
        "" if text.strip() in ("", "null") else text[:300]
    )
    request_id = next((headers[h] for h in _REQUEST_ID_HEADERS if h in headers), None)
    message = f"{provider} returned HTTP {status} for model {model!r}"
    if detail:
        message += f": {detail}"
    return status_error_class(status)(
        message,
        status_code=status,
        body=text,
        retry_after=parse_retry_after(headers),
        provider=provider,
        model=model,
        request_id=request_id,
    )


def _error_detail(body: bytes) -> str:
    """The human message inside the common JSON error shapes, or ``""``."""
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return ""
    for _ in range(3):
        if not isinstance(data, dict):
            break
        for key in ("message", "detail", "error", "errors", "msg"):
            if key in data:
                data = data[key]
                break
        else:
            break
        if isinstance(data, str):
            return data[:300]
        if isinstance(data, list) and data:
            data = data[0]
    return ""
