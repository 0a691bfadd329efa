"""HTTP transport: session ownership, the JSON POST helper and transport-error mapping.

This module imports aiohttp, so the client imports it only on the first HTTP call.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp
import msgspec

from rerankit._deadlines import Deadlines, own_task
from rerankit._errors import (
    APIConnectionError,
    APITimeoutError,
    status_error_class,
)
from rerankit._redact import redact_text
from rerankit._retry import parse_retry_after
from rerankit._version import __version__

__all__ = ["HTTPResponse", "Transport"]

USER_AGENT = f"rerankit/{__version__}"
_MAX_ERROR_BODY = 2000
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-trace-id")
_abandoned: list[object] = []
"""Sessions left behind by fork, or whose loop ended without shutting down its async
generators. Touching them could act on another process's sockets: they are kept, never
closed or collected."""
_closers: dict[int, AsyncGenerator[None, None]] = {}
"""The async generators that close each session when its loop shuts down (kept referenced,
since a loop tracks its async generators weakly)."""


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


class Transport:
    """One aiohttp session per event loop, created lazily, shared by every call of a client.

    A session is closed when its loop shuts down (``asyncio.run`` does that), so a client used
    from successive loops keeps no old connections. Calls beyond the pool's size wait their turn
    in order, before their timeout starts.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = 100,
        max_connections_per_host: int = 0,
    ) -> None:
        self._owned = session is None
        self._session = session
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max_connections = max_connections
        self._max_connections_per_host = max_connections_per_host
        self._slots: _Slots | None = None
        self._deadlines: Deadlines | None = None
        self._timeouts: dict[tuple[float | None, bool], aiohttp.ClientTimeout] = {}
        self._pid = os.getpid()

    async def _open(
        self, loop: asyncio.AbstractEventLoop
    ) -> tuple[aiohttp.ClientSession, _Slots, Deadlines]:
        """A session, connection slots and request deadlines for ``loop``, which has none yet."""
        session = self._session
        slots, deadlines = _Slots(self._max_connections), Deadlines(loop)
        if session is not None and not self._owned:
            self._slots, self._deadlines, self._loop = slots, deadlines, loop
            return session, slots, deadlines
        if session is not None:
            self._forget(session)
        session = aiohttp.ClientSession(
            connector=_Connector(
                limit=self._max_connections,
                limit_per_host=self._max_connections_per_host,
                ttl_dns_cache=300,
            ),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
        self._session, self._loop, self._pid = session, loop, os.getpid()
        self._slots, self._deadlines = slots, deadlines
        closer = self._close_at_loop_shutdown(session)
        await closer.asend(None)
        _closers[id(session)] = closer
        return session, slots, deadlines

    def _forget(self, session: aiohttp.ClientSession) -> None:
        """Drop a session of another loop or process without touching its sockets."""
        if session.closed:
            return
        _abandoned.append(session)  # inherited through fork, or its loop never shut down

    async def _close_at_loop_shutdown(
        self, session: aiohttp.ClientSession
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            _closers.pop(id(session), None)
            if self._session is session:
                self._session = self._slots = self._deadlines = None
            if os.getpid() == self._pid and not session.closed:
                await session.close()

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
        loop = asyncio.get_running_loop()
        session, slots, deadlines = self._session, self._slots, self._deadlines
        if session is None or slots is None or deadlines is None or self._loop is not loop:
            session, slots, deadlines = await self._open(loop)
        if not slots.take_now():
            await slots.take()
        task = None
        if timeout is not None:
            task = asyncio.current_task()
            if task is not None:
                deadlines.start(task, timeout)
        try:
            async with session.post(
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
            raise _timed_out(provider, model, timeout) from None
        except asyncio.TimeoutError as exc:  # aiohttp's limits: connecting, or outside a task
            raise _timed_out(provider, model, timeout) from exc
        except (aiohttp.ClientError, OSError) as exc:
            reason = redact_text(str(exc) or type(exc).__name__, secret)
            raise APIConnectionError(
                f"could not reach {provider} (model {model!r}): {reason}",
                provider=provider,
                model=model,
            ) from exc
        finally:
            if task is not None:
                deadlines.stop(task)
            slots.give()
        if status >= 400:
            raise _status_error(status, resp_headers, data, provider, model, secret)
        return HTTPResponse(status, resp_headers, data)

    async def aclose(self) -> None:
        """Close the session this transport created (a caller's own session is left open)."""
        session, self._session = self._session, None
        if session is None or not self._owned:
            return
        closer = _closers.pop(id(session), None)
        if self._loop is asyncio.get_running_loop():
            if closer is not None:
                await closer.aclose()
            await session.close()
        elif self._loop is not None and self._loop.is_running() and os.getpid() == self._pid:
            asyncio.run_coroutine_threadsafe(session.close(), self._loop)
        else:
            self._forget(session)


def _timed_out(provider: str, model: str, timeout: float | None) -> APITimeoutError:
    return APITimeoutError(
        f"{provider} did not answer within {timeout} s (model {model!r})",
        provider=provider,
        model=model,
    )


def _status_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    provider: str,
    model: str,
    secret: str | None,
) -> Exception:
    text = redact_text(body[:_MAX_ERROR_BODY].decode("utf-8", "replace"), secret)
    detail = redact_text(_error_detail(body), secret) or (
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
