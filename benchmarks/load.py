"""Load and fault run: many rerank calls at high concurrency against a fake API that fails 10%.

    python benchmarks/load.py                  # 50,000 calls at 200 in flight, 10% faults
    python benchmarks/load.py --quick          # 2,000 calls, a smoke test
    python benchmarks/load.py --json           # the report as JSON on stdout

The server is ``rerankit.testing``'s ``FakeServer`` running ``FaultInjector(CohereFake)`` in a
child process (its CPU is not charged to the client): 429s with ``Retry-After`` or
``retry-after-ms``, 500s, 503s, dropped connections, truncated bodies, answers that hang past the
client's timeout or are merely slow, cut-off JSON and bad indices. Every call ranks its own query
and documents, and its answer is checked against the ranking computed here from
``overlap_score``. The report: calls per second, latency percentiles of whole calls (retries
included), outcomes by kind, what the server injected, memory at the start (after a warm-up) and
the end, and the sockets, tasks and server requests left over. It exits with status 1 when a call
returned a wrong ranking or an untyped error, or when anything was left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import rerankit  # noqa: E402
from rerankit import AsyncClient, RerankResponse, RetryPolicy  # noqa: E402
from rerankit.testing import CohereFake, FakeServer, overlap_score  # noqa: E402
from rerankit.testing._faults import FAULT_KINDS, FaultInjector, open_tcp_connections  # noqa: E402

API_KEY = "load-key-0123456789"
MODEL = "cohere/rerank-v3.5"
TYPED = (
    rerankit.RateLimitError,
    rerankit.InternalServerError,
    rerankit.APIConnectionError,
    rerankit.ResponseValidationError,
)
WORDS = (
    *("password", "reset", "account", "billing", "invoice", "router", "settings", "offline"),
    *("sync", "device", "token", "key", "rotation", "cluster", "cache", "index", "query"),
    *("latency", "region", "audit", "backup", "restore", "quota", "limit"),
)


# --------------------------------------------------------------------------- the server


def serve(args: argparse.Namespace) -> None:
    """The child process: serve until stdin closes; answer ``stats`` lines with JSON."""
    injector = FaultInjector(
        CohereFake(API_KEY), rate=args.fault_rate, seed=args.seed, hang=args.hang
    )
    with FakeServer(injector, record=False) as server:
        print(f"PORT {server.port}", flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                stats = {
                    **injector.stats(),
                    "in_flight": server.in_flight,
                    "cancelled": server.cancelled,
                    "open_connections": server.open_connections(),
                }
                print(json.dumps(stats), flush=True)


class ServerProcess:
    def __init__(self, args: argparse.Namespace) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve"]
        command += ["--fault-rate", str(args.fault_rate), "--seed", str(args.seed)]
        command += ["--hang", str(args.hang)]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"fake server did not start (said {line!r})")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"stats\n")
        self.proc.stdin.flush()
        stats: dict[str, int] = json.loads(self.proc.stdout.readline())
        return stats

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- the calls


def make_call(number: int) -> tuple[str, list[str], int | None]:
    """Call ``number``'s own query, documents and cut-off."""
    rng = random.Random(number)
    query = " ".join(rng.sample(WORDS, rng.randint(2, 4))) + f" call{number}"
    documents = [" ".join(rng.sample(WORDS, rng.randint(1, 6))) for _ in range(rng.randint(3, 12))]
    return query, documents, rng.choice([None, None, 1, 3, 5])


def expected(query: str, documents: list[str], top_n: int | None) -> list[tuple[int, float]]:
    scores = [overlap_score(query, text) for text in documents]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [(i, scores[i]) for i in order[:top_n]]


class Run:
    """Outcomes, latencies and memory samples of the calls made so far."""

    def __init__(self, calls: int, sample_every: int) -> None:
        self.outcomes: Counter[str] = Counter()
        self.latencies = array("d", bytes(8 * calls))  # allocated up front: no growth to measure
        self.done = 0
        self.rss_mb: list[float] = []
        self.sample_every = sample_every
        self.wrong: list[str] = []

    def record(self, number: int, outcome: RerankResponse | Exception, seconds: float) -> None:
        self.latencies[self.done] = seconds
        self.done += 1
        if isinstance(outcome, RerankResponse):
            query, documents, top_n = make_call(number)
            got = [(r.index, r.relevance_score) for r in outcome.results]
            if got != expected(query, documents, top_n) or any(
                r.document != {"text": documents[r.index]} for r in outcome.results
            ):
                self.outcomes["WRONG RANKING"] += 1
                self.wrong.append(f"call {number}: {got}")
            else:
                self.outcomes["ok"] += 1
        elif isinstance(outcome, TYPED):
            self.outcomes[type(outcome).__name__] += 1
        else:
            self.outcomes[f"UNTYPED {type(outcome).__name__}"] += 1
            self.wrong.append(f"call {number}: {outcome!r}")
        if self.done % self.sample_every == 0:
            self.rss_mb.append(rss_mb())


async def make_calls(
    client: AsyncClient, numbers: range, concurrency: int, run: Run, timeout: float
) -> None:
    queue = iter(numbers)

    async def worker() -> None:
        for number in queue:
            query, documents, top_n = make_call(number)
            started = time.perf_counter()
            outcome: RerankResponse | Exception
            try:
                outcome = await client.rerank(MODEL, query, documents, top_n=top_n)
            except Exception as exc:
                outcome = exc
            run.record(number, outcome, time.perf_counter() - started)

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)


# --------------------------------------------------------------------------- memory


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
            *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


def heap_in_use_mb() -> float | None:
    """Bytes glibc's ``malloc`` has handed out and not had back, in MB (``mallinfo2``)."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return float(info.uordblks + info.hblkhd) / 2**20


def memory() -> dict[str, Any]:
    """Memory once garbage is collected: RSS, Python blocks, C heap in use, and RSS once glibc
    has handed its free memory back (``malloc_trim``): what it keeps is not in use."""
    gc.collect()
    figures = {
        "rss_mb": rss_mb(),
        "python_blocks": sys.getallocatedblocks(),
        "heap_mb": heap_in_use_mb(),
        "rss_trimmed_mb": None,
    }
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return figures
    trim(0)
    figures["rss_trimmed_mb"] = rss_mb()
    return figures


async def settle(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# --------------------------------------------------------------------------- the run


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(args: argparse.Namespace, server: ServerProcess) -> dict[str, Any]:
    retry = RetryPolicy(max_retries=args.retries, initial_delay=0.001, max_delay=0.01)
    options: dict[str, Any] = {"timeout": args.timeout, "retry": retry}
    if args.max_connections:
        options["max_connections"] = args.max_connections
    settings = {"cohere": {"api_key": API_KEY, "api_base": server.url}}
    tasks_before = asyncio.all_tasks()
    warmup = max(args.concurrency, args.calls // 20)
    run = Run(args.calls, sample_every=max(1, args.calls // 10))
    client = AsyncClient(providers=settings, **options)
    limit = 60 + args.calls / 100  # seconds: a stuck run fails instead of hanging
    try:
        await make_calls(client, range(warmup), args.concurrency, run, limit)
        start = memory()
        cpu, wall = time.process_time(), time.perf_counter()
        await make_calls(client, range(warmup, args.calls), args.concurrency, run, limit)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        end = memory()
        settled = await settle(lambda: server.stats()["in_flight"] == 0)
        pooled = open_tcp_connections(server.port)
        stats = server.stats()
    finally:
        await client.aclose()
    closed = await settle(lambda: open_tcp_connections(server.port) == 0)
    left_tasks = len(asyncio.all_tasks() - tasks_before)
    measured = args.calls - warmup
    latencies = list(run.latencies[warmup : run.done])
    return {
        "config": {
            "calls": args.calls,
            "warmup_calls": warmup,
            "concurrency": args.concurrency,
            "fault_rate": args.fault_rate,
            "timeout_s": args.timeout,
            "hang_s": args.hang,
            "max_retries": args.retries,
            "max_connections": args.max_connections or "client default (100)",
            "seed": args.seed,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "throughput_calls_per_s": measured / wall,
        "client_cpu_us_per_call": cpu / measured * 1e6,
        "latency_ms": {
            name: percentile(latencies, share) * 1e3
            for name, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        },
        "outcomes": dict(run.outcomes.most_common()),
        "server": stats,
        "injected": {kind: stats[kind] for kind in FAULT_KINDS},
        "memory": {
            "start": start,
            "end": end,
            "rss_samples_mb": [round(mb, 1) for mb in run.rss_mb],
        },
        "left_over": {
            "server_in_flight": stats["in_flight"],
            "pooled_sockets_before_close": pooled,
            "server_connections_before_close": stats["open_connections"],
            "sockets_after_close": open_tcp_connections(server.port),
            "tasks_after_close": left_tasks,
            "settled": settled and closed,
        },
        "problems": run.wrong[:20],
    }


def failed(report: dict[str, Any]) -> list[str]:
    """Why the run failed: wrong rankings, untyped errors, or anything left behind."""
    left = report["left_over"]
    outcomes = report["outcomes"]
    reasons = [
        f"{count} calls: {name}"
        for name, count in outcomes.items()
        if name.startswith(("WRONG", "UNTYPED"))
    ]
    if left["server_in_flight"]:
        reasons.append(f"{left['server_in_flight']} requests still in flight at the server")
    if left["sockets_after_close"]:
        reasons.append(f"{left['sockets_after_close']} sockets open after the client closed")
    if left["tasks_after_close"]:
        reasons.append(f"{left['tasks_after_close']} tasks left after the client closed")
    return reasons


def markdown(report: dict[str, Any]) -> str:
    config, memory_, left = report["config"], report["memory"], report["left_over"]
    latency = report["latency_ms"]
    start, end = memory_["start"], memory_["end"]
    heap = (
        f"{start['heap_mb']:.2f} → {end['heap_mb']:.2f} MB"
        if start["heap_mb"] is not None and end["heap_mb"] is not None
        else "unknown"
    )
    trimmed = (
        f"{start['rss_trimmed_mb']:.1f} → {end['rss_trimmed_mb']:.1f}"
        if start["rss_trimmed_mb"] is not None and end["rss_trimmed_mb"] is not None
        else "unknown"
    )
    lines = [
        f"{config['calls']:,} calls ({config['warmup_calls']:,} of them warm-up), "
        f"{config['concurrency']} in flight, {config['fault_rate']:.0%} faults, "
        f"timeout {config['timeout_s']} s, {config['max_retries']} retries, "
        f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}.",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| throughput (calls/s) | {report['throughput_calls_per_s']:,.0f} |",
        f"| client CPU / call (µs) | {report['client_cpu_us_per_call']:,.0f} |",
        f"| latency p50 / p95 / p99 / max (ms) | {latency['p50']:.1f} / {latency['p95']:.1f} / "
        f"{latency['p99']:.1f} / {latency['max']:.1f} |",
        f"| RSS after warm-up → end (MB) | {start['rss_mb']:.1f} → {end['rss_mb']:.1f} |",
        f"| RSS once malloc hands back its free memory, after warm-up → end (MB) | {trimmed} |",
        f"| C heap in use (malloc) after warm-up → end | {heap} |",
        f"| Python memory blocks after warm-up → end | {start['python_blocks']:,} → "
        f"{end['python_blocks']:,} |",
        f"| server requests | {report['server']['requests']:,} |",
        f"| requests in flight at the server after the run | {left['server_in_flight']} |",
        f"| pooled sockets before close (server's view) | {left['pooled_sockets_before_close']} "
        f"({left['server_connections_before_close']}) |",
        f"| sockets / tasks left after close | {left['sockets_after_close']} / "
        f"{left['tasks_after_close']} |",
        "",
        "| outcome | calls |",
        "|---|---:|",
        *(f"| {name} | {count:,} |" for name, count in report["outcomes"].items()),
        "",
        "| fault injected | requests |",
        "|---|---:|",
        *(f"| {kind} | {count:,} |" for kind, count in report["injected"].items()),
        "",
        f"RSS every {config['calls'] // 10:,} calls (MB): "
        + ", ".join(f"{mb:.1f}" for mb in memory_["rss_samples_mb"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=50_000, help="calls in all (50,000)")
    parser.add_argument("--concurrency", type=int, default=200, help="calls in flight (200)")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of faults (0.1)")
    parser.add_argument("--timeout", type=float, default=1.0, help="client timeout, s (1.0)")
    parser.add_argument("--hang", type=float, default=10.0, help="a hang's delay, s (10)")
    parser.add_argument("--retries", type=int, default=2, help="retries per call (2)")
    parser.add_argument(
        "--max-connections", type=int, default=0, help="client pool size (client default)"
    )
    parser.add_argument("--seed", type=int, default=7, help="the fault stream's seed (7)")
    parser.add_argument("--quick", action="store_true", help="2,000 calls: a smoke test")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
        return 0
    if args.quick:
        args.calls = 2_000
    server = ServerProcess(args)
    try:
        report = asyncio.run(measure(args, server))
    finally:
        server.close()
    reasons = failed(report)
    report["failed"] = reasons
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    for reason in reasons:
        print(f"FAILED: {reason}", file=sys.stderr)
    return 1 if reasons else 0


if __name__ == "__main__":
    sys.exit(main())
