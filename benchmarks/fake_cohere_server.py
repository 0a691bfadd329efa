"""A fast, minimal Cohere v2 rerank server for the benchmarks, run in its own process.

It answers ``POST /v2/rerank`` on 127.0.0.1 with Cohere's v2 shape (``id``, ``results`` of
``index``/``relevance_score`` sorted by descending score, ``meta.billed_units``). Replies are
encoded once per ``(document count, top_n)`` and then served as cached bytes, so the server
spends as little CPU as possible and none of it in the client process being measured.

Run it as ``python benchmarks/fake_cohere_server.py --api-key KEY``: it prints ``PORT <n>`` on
stdout once it listens, and exits when its stdin closes (its parent went away) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

__all__ = ["encode_reply", "serve"]


class _Request(msgspec.Struct):
    model: str
    query: str
    documents: list[str]
    top_n: int | None = None


_decoder = msgspec.json.Decoder(_Request)
_NOT_FOUND = b'{"message":"no route"}'
_UNAUTHORIZED = b'{"message":"invalid api token"}'
_BAD_REQUEST = b'{"message":"invalid request"}'


def encode_reply(count: int, top_n: int | None = None) -> bytes:
    """The v2 answer for ``count`` documents: distinct scores, best first, cut to ``top_n``."""
    # A fixed shuffle (a step coprime with the count: 7919 is prime) so results arrive in
    # neither index nor reverse-index order, with strictly decreasing scores.
    step = 7919 if count % 7919 else 1
    order = [(i * step + count // 2) % count for i in range(count)]
    results = [
        {"index": index, "relevance_score": round(1.0 - rank / (count + 1), 6)}
        for rank, index in enumerate(order)
    ]
    if top_n is not None:
        del results[top_n:]
    return msgspec.json.encode(
        {
            "id": "bench-0000",
            "results": results,
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"search_units": max(1, -(-count // 100))},
            },
        }
    )


def _make_handler(api_key: str) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    expected_auth = f"Bearer {api_key}"
    cache: dict[tuple[int, int | None], bytes] = {}

    def reply(status: int, body: bytes) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        if request.method != "POST" or request.path != "/v2/rerank":
            return reply(404, _NOT_FOUND)
        if request.headers.get("Authorization") != expected_auth:
            return reply(401, _UNAUTHORIZED)
        try:
            parsed = _decoder.decode(body)
        except msgspec.DecodeError:
            return reply(400, _BAD_REQUEST)
        count = len(parsed.documents)
        top_n = parsed.top_n if parsed.top_n is None or parsed.top_n < count else None
        if count == 0 or (top_n is not None and top_n < 1):
            return reply(400, _BAD_REQUEST)
        key = (count, top_n)
        payload = cache.get(key)
        if payload is None:
            payload = cache[key] = encode_reply(count, top_n)
        return reply(200, payload)

    return handle


async def serve(api_key: str, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve until stdin reaches EOF or the process gets SIGTERM."""
    loop = asyncio.get_running_loop()
    server = web.Server(_make_handler(api_key), access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    stdin = sys.stdin.fileno()

    def on_stdin() -> None:
        if not os.read(stdin, 4096):
            loop.remove_reader(stdin)
            stop.set()

    loop.add_reader(stdin, on_stdin)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--api-key", default="bench-key")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.api_key, port=args.port))


if __name__ == "__main__":
    main()
