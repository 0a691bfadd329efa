"""Benchmark batching and chunking: many or long documents through a limited fake server.

    python benchmarks/batching.py --markdown       # full run, prints the results table
    python benchmarks/batching.py --quick --json   # a tiny run, JSON on stdout

A fake Cohere-shaped server in a separate process on 127.0.0.1 takes at most ``--limit``
documents per request (more is a 400) and answers each request after ``--latency`` seconds,
scoring each document by a hash of its text. rerankit's ``cohere_compatible`` provider, told the
limit and a 512-token window through ``capabilities``, reranks:

* ``short``: ``--short`` documents of ~100 characters (batching only);
* ``long``: ``--long`` documents of ~20,000 characters each (chunking, then batching).

Reported: wall time per call (median over ``--rounds``) against the ideal, which is
``ceil(requests / concurrency) * latency``, and against a floor measured in the same run: a
hand-written aiohttp + msgspec client sending the very same requests (the planner's batches,
prepared in advance) at the same concurrency and merging the answers, which is what the
transport and the server cost on this machine; and peak traced memory per document
(tracemalloc, a separate run) at several input sizes, to show it grows linearly. Nothing here
asserts speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import msgspec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WINDOW = 512
TARGET_WALL_RATIO = 1.2

SERVER = """
import asyncio, sys, zlib
import msgspec
from aiohttp import web

LIMIT, LATENCY = int(sys.argv[1]), float(sys.argv[2])
decoder = msgspec.json.Decoder()
encoder = msgspec.json.Encoder()

async def rerank(request):
    body = decoder.decode(await request.read())
    docs = body["documents"]
    if len(docs) > LIMIT:
        return web.Response(status=400, body=b'{"message": "too many documents"}')
    await asyncio.sleep(LATENCY)
    results = [
        {"index": i, "relevance_score": (zlib.crc32(d.encode()) % 100003) / 100003}
        for i, d in enumerate(docs)
    ]
    return web.Response(body=encoder.encode({"results": results}), content_type="application/json")

async def main():
    app = web.Application(client_max_size=1 << 30)
    app.router.add_post("/rerank", rerank)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print("PORT", runner.addresses[0][1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def score(text: str) -> float:
    """The fake server's score of a text."""
    return (zlib.crc32(text.encode()) % 100003) / 100003


def short_documents(count: int) -> list[str]:
    return [f"short document {i}: " + "lorem ipsum dolor sit amet " * 3 for i in range(count)]


def long_documents(count: int, chars: int = 20_000) -> list[str]:
    words = ["policy", "section", "clause", "retention", "archive", "audit", "schedule", "review"]
    docs = []
    for i in range(count):
        text = " ".join(f"{words[(i + j) % len(words)]}{j % 97}" for j in range(chars // 9))
        docs.append(f"report {i} " + text[:chars])
    return docs


class Server:
    def __init__(self, limit: int, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(limit), str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()
        self.url = f"http://127.0.0.1:{line[1]}"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def client(url: str, limit: int, concurrency: int) -> Any:
    import rerankit

    return rerankit.AsyncClient(
        providers={
            "cohere_compatible": {
                "api_base": url,
                "capabilities": {"max_documents": limit, "max_tokens_per_doc": WINDOW},
            }
        },
        batch_concurrency=concurrency,
        max_batch_concurrency=concurrency,
        timeout=120,
    )


async def one_call(
    url: str, docs: list[str], limit: int, concurrency: int
) -> tuple[float, int, Any]:
    async with client(url, limit, concurrency) as rk:
        await rk.rerank("cohere_compatible/bench", "q", docs[:10])  # connect, warm up
        start = time.perf_counter()
        response = await rk.rerank("cohere_compatible/bench", "q", docs, top_n=10)
        wall = time.perf_counter() - start
    return wall, int(response.provider_meta.get("batches", 1)), response


class Result(msgspec.Struct):
    index: int
    relevance_score: float


class Answer(msgspec.Struct):
    results: list[Result]


async def floor_call(url: str, query: str, docs: list[str], limit: int, concurrency: int) -> float:
    """The same requests as rerankit's plan, built beforehand and sent by plain aiohttp."""
    import aiohttp

    from rerankit._plan import plan_requests
    from rerankit._tokens import TokenEstimator
    from rerankit.providers import ModelCapabilities

    caps = ModelCapabilities(max_documents=limit, max_tokens_per_doc=WINDOW)
    plan = plan_requests(query, docs, caps, TokenEstimator())
    assert plan is not None
    encoder = msgspec.json.Encoder()

    decoder = msgspec.json.Decoder(Answer)
    bodies = [
        encoder.encode({"model": "bench", "query": query, "documents": plan.texts[a:b]})
        for a, b in plan.batches
    ]
    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def send(body: bytes) -> Answer:
            async with slots, session.post(f"{url}/rerank", data=body) as resp:
                return decoder.decode(await resp.read())

        await send(bodies[0])  # connect, warm up
        start = time.perf_counter()
        answers = await asyncio.gather(*(send(body) for body in bodies))
        best: dict[int, float] = {}
        for (first, _), answer in zip(plan.batches, answers, strict=True):
            for result in answer.results:
                owner = plan.owners[first + result.index] if plan.owners else first + result.index
                if result.relevance_score > best.get(owner, -1.0):
                    best[owner] = result.relevance_score
        sorted(best.items(), key=lambda item: -item[1])[:10]
        return time.perf_counter() - start


def measure_case(name: str, docs: list[str], url: str, args: argparse.Namespace) -> dict[str, Any]:
    walls, floors, batches, response = [], [], 0, None
    for _ in range(args.rounds):
        wall, batches, response = asyncio.run(one_call(url, docs, args.limit, args.concurrency))
        walls.append(wall)
        floors.append(asyncio.run(floor_call(url, "q", docs, args.limit, args.concurrency)))
    assert response is not None
    best = [r.index for r in response.results]
    if name == "short":  # each document is one request item: check the merged ranking
        expected = sorted(range(len(docs)), key=lambda i: (-score(docs[i]), i))[:10]
        assert best == expected, "batched ranking differs from the unlimited ranking"
    ideal = math.ceil(batches / args.concurrency) * args.latency
    wall, floor = statistics.median(walls), statistics.median(floors)
    return {
        "documents": len(docs),
        "characters_per_document": round(sum(map(len, docs)) / len(docs)),
        "requests": batches,
        "wall_s": wall,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "floor_s": floor,
        "floor_ratio": wall / floor,
        "memory": measure_memory(name, docs, url, args),
    }


def measure_memory(
    name: str, docs: list[str], url: str, args: argparse.Namespace
) -> list[dict[str, float]]:
    rows = []
    for fraction in (0.25, 0.5, 1.0):
        part = docs[: max(1, int(len(docs) * fraction))]
        tracemalloc.start()
        asyncio.run(one_call(url, part, args.limit, args.concurrency))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        input_bytes = sum(len(d.encode()) for d in part)
        rows.append(
            {
                "documents": len(part),
                "peak_bytes_per_document": peak / len(part),
                "peak_per_input_byte": peak / input_bytes,
            }
        )
    return rows


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        f"Fake server: at most {cfg['limit']:,} documents per request, "
        f"{cfg['latency'] * 1000:.0f} ms per request; rerankit: {cfg['concurrency']} batches "
        f"in flight, {WINDOW}-token chunks.",
        "",
        "| case | documents | chars/doc | requests | rerankit (ms) | ideal (ms) | "
        "rerankit ÷ ideal | hand-written floor (ms) | rerankit ÷ floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, case in report["cases"].items():
        lines.append(
            f"| {name} | {case['documents']:,} | {case['characters_per_document']:,} | "
            f"{case['requests']} | {case['wall_s'] * 1000:.0f} | {case['ideal_s'] * 1000:.0f} | "
            f"{case['ratio']:.2f}x | {case['floor_s'] * 1000:.0f} | {case['floor_ratio']:.2f}x |"
        )
    lines += ["", f"Target: within {TARGET_WALL_RATIO}x of the ideal."]
    lines += [
        "",
        "| case | documents | peak traced memory / document | peak / input byte |",
        "|---|---:|---:|---:|",
    ]
    for name, case in report["cases"].items():
        for row in case["memory"]:
            lines.append(
                f"| {name} | {row['documents']:,} | {row['peak_bytes_per_document']:,.0f} B | "
                f"{row['peak_per_input_byte']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=50_000, help="short documents (50,000)")
    parser.add_argument("--long", type=int, default=500, help="long documents (500)")
    parser.add_argument("--limit", type=int, default=1_000, help="documents per request (1,000)")
    parser.add_argument("--latency", type=float, default=0.005, help="server seconds (0.005)")
    parser.add_argument("--concurrency", type=int, default=8, help="batches in flight (8)")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls per case (5)")
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--markdown", action="store_true", help="print the markdown tables")
    args = parser.parse_args(argv)
    if args.quick:
        args.short, args.long, args.rounds, args.limit = 2_000, 20, 1, 100
    sys.path.insert(0, str(ROOT))
    server = Server(args.limit, args.latency)
    try:
        cases = {
            "short": measure_case("short", short_documents(args.short), server.url, args),
            "long": measure_case("long", long_documents(args.long), server.url, args),
        }
    finally:
        server.close()
    report = {
        "config": {k: getattr(args, k) for k in ("limit", "latency", "concurrency", "rounds")},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "cases": cases,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    if args.markdown or not args.json:
        print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
