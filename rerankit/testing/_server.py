"""A fake provider server on 127.0.0.1 for tests: real HTTP, scripted faults, recorded requests.

The server runs its own event loop in a background thread, so async tests and tests of the sync
API (which block their thread) can both talk to it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from aiohttp import web

__all__ = ["FakeServer", "Handler", "ReceivedRequest", "Reply"]


class Reply(msgspec.Struct, kw_only=True):
    """What the server answers: a JSON ``body`` (or raw bytes), a status and headers.

    ``delay`` waits before answering (a hung server: a long delay); ``reset`` drops the
    connection without an answer; ``truncate`` sends a ``Content-Length`` longer than the body.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    truncate: bool = False


class ReceivedRequest(msgspec.Struct, kw_only=True):
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int] | None = None

    def json(self) -> Any:
        """The body decoded as JSON."""
        return msgspec.json.decode(self.body)


Handler = Callable[[ReceivedRequest], Reply]
"""What a ``FakeServer`` calls for each request."""


class FakeServer:
    """An HTTP server on 127.0.0.1 that answers every request with ``handler``.

    ``fail(*replies)`` queues replies served, in order, before the handler is asked again.
    ``received`` lists every request and ``connections`` every client address (both stay empty
    with ``record=False``, for long runs); ``requests`` counts requests, ``in_flight`` those
    not answered yet, and ``cancelled`` those whose client went away before the answer was sent.
    """

    def __init__(self, handler: Handler, *, record: bool = True) -> None:
        self.handler = handler
        self.record = record
        self.received: list[ReceivedRequest] = []
        self.requests = 0
        self.in_flight = 0
        self.cancelled = 0
        self.connections: set[tuple[str, int]] = set()
        self._faults: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def open_connections(self) -> int:
        """Client connections the server holds open now (0 when it is not running)."""
        loop, runner = self._loop, self._runner
        if loop is None or runner is None or runner.server is None or loop.is_closed():
            return 0
        server = runner.server

        async def count() -> int:
            return len(server.connections)

        return asyncio.run_coroutine_threadsafe(count(), loop).result(10)

    def fail(self, *replies: Reply) -> None:
        """Serve ``replies`` to the next requests, before the handler."""
        with self._lock:
            self._faults.extend(replies)

    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving in a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._serve, name="fake-provider", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise RuntimeError("fake server failed to start") from self._error

    def stop(self) -> None:
        """Stop serving and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _startup(self) -> None:
        app = web.Application(client_max_size=256 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
        try:
            return await self._answer(request)
        except asyncio.CancelledError:
            with self._lock:
                self.cancelled += 1
            raise
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        received = ReceivedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
            peer=tuple(peer[:2]) if peer else None,
        )
        with self._lock:
            if self.record:
                self.received.append(received)
                if received.peer:
                    self.connections.add(received.peer)
            reply = self._faults.popleft() if self._faults else None
        if reply is None:
            reply = self.handler(received)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.reset:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        body = reply.body if isinstance(reply.body, bytes) else msgspec.json.encode(reply.body)
        headers: Mapping[str, str] = {"Content-Type": "application/json", **reply.headers}
        if reply.truncate:
            response = web.StreamResponse(status=reply.status, headers=headers)
            response.content_length = len(body) + 100
            await response.prepare(request)
            await response.write(body)
            if request.transport is not None:
                request.transport.close()
            return response
        return web.Response(status=reply.status, body=body, headers=headers)
