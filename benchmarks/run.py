"""Benchmark rerankit against a hand-written aiohttp + msgspec client, in the same run.

    python benchmarks/run.py --markdown          # full run, prints the results table
    python benchmarks/run.py --quick --json      # a tiny run, JSON on stdout

A fake Cohere v2 server (``fake_cohere_server.py``) runs in a separate process on 127.0.0.1,
so the server's CPU is not charged to the client. Three clients make the same call:

* ``baseline``: ``baseline.BaselineClient`` (aiohttp + msgspec, Bearer auth, sorted results);
* ``rerankit_async``: ``rerankit.AsyncClient.rerank``;
* ``rerankit_sync``: ``rerankit.Client.rerank``, called from plain threads with no event loop.

Each round measures every client in a rotated order, sequentially (client CPU per call from
``time.process_time`` and per-call latency) and then with ``--concurrency`` callers in flight
(throughput). Figures are medians over rounds; ratios are medians of per-round ratios (with their
interquartile range), so drift on a noisy machine cancels out. Import times come from
``python -X importtime`` in fresh subprocesses. Nothing here asserts speed: the targets are
reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

API_KEY = "bench-key-0123456789"
MODEL = "rerank-v3.5"
QUERY = "how do I rotate the API keys of a production deployment without downtime"

CLIENTS = ("baseline", "rerankit_async", "rerankit_sync")
CLIENT_LABELS = {
    "baseline": "baseline (aiohttp + msgspec)",
    "rerankit_async": "rerankit AsyncClient",
    "rerankit_sync": "rerankit Client (sync)",
}

TARGET_CPU_RATIO = 1.3
TARGET_THROUGHPUT_RATIO = 0.8
TARGET_IMPORT_RATIO = 1.0
TARGET_SYNC_OVERHEAD_US = 100.0

_VOCABULARY = (
    "key rotation deployment production secret token downtime rollout service credential "
    "vault cluster restart replica config environment access policy audit log invoice "
    "password reset account billing region latency cache index query ranking"
)
_WORDS = _VOCABULARY.split()


def make_documents(count: int) -> list[str]:
    """``count`` deterministic documents of ~25 words (~180 characters) each."""
    docs = []
    for i in range(count):
        words = [_WORDS[(i * 7 + j * 3) % len(_WORDS)] for j in range(24)]
        docs.append(f"Document {i}: " + " ".join(words) + ".")
    return docs


# --------------------------------------------------------------------------- fake server


class ServerProcess:
    """``fake_cohere_server.py`` in a child process; stops when closed (or when we die)."""

    TICK = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
    """Seconds per clock tick, the resolution of ``cpu_seconds``."""

    def __init__(self, cpu: int | None = None) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(HERE / "fake_cohere_server.py"), "--api-key", API_KEY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_env(),
        )
        if cpu is not None:
            os.sched_setaffinity(self._proc.pid, {cpu})
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"fake server did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def cpu_seconds(self) -> float | None:
        """The server process's CPU time so far (Linux ``/proc``; ``None`` elsewhere)."""
        try:
            stat = Path(f"/proc/{self._proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * self.TICK

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _child_env() -> dict[str, str]:
    """The environment of child interpreters: this checkout first on the path, and bytecode
    cached (outside the source tree) as in a normal install, even under
    ``PYTHONDONTWRITEBYTECODE``, so import times do not include compiling sources."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "rerankit-bench-pycache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# --------------------------------------------------------------------------- measurements


@dataclass
class Sample:
    """One client in one round."""

    cpu_us_per_call: float
    latency_median_us: float
    throughput_calls_per_s: float
    concurrent_cpu_us_per_call: float
    server_cpu_us_per_call: float | None


@dataclass
class Workload:
    documents: list[str]
    calls: int
    throughput_calls: int
    concurrency: int


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal non-negative shares."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _per_call_us(before: float | None, after: float | None, calls: int) -> float | None:
    """Server CPU per call in µs, or ``None`` when unknown or too coarse (< 5 clock ticks)."""
    if before is None or after is None or after - before < 5 * ServerProcess.TICK:
        return None
    return (after - before) / calls * 1e6


async def _sequential_async(
    call: Callable[[], Coroutine[Any, Any, object]], calls: int
) -> tuple[float, list[int]]:
    latencies: list[int] = []
    clock = time.perf_counter_ns
    cpu = time.process_time()
    for _ in range(calls):
        start = clock()
        await call()
        latencies.append(clock() - start)
    return time.process_time() - cpu, latencies


async def _concurrent_async(
    call: Callable[[], Coroutine[Any, Any, object]], calls: int, concurrency: int
) -> tuple[float, float]:
    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n) for n in _shares(calls, concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu


def _sequential_sync(call: Callable[[], object], calls: int) -> tuple[float, list[int]]:
    """Sequential calls from a fresh plain thread (no event loop anywhere in it)."""
    result: list[tuple[float, list[int]]] = []
    errors: list[BaseException] = []

    def run() -> None:
        latencies: list[int] = []
        clock = time.perf_counter_ns
        cpu = time.process_time()
        try:
            for _ in range(calls):
                start = clock()
                call()
                latencies.append(clock() - start)
        except BaseException as exc:
            errors.append(exc)
            return
        result.append((time.process_time() - cpu, latencies))

    thread = threading.Thread(target=run, name="bench-sync")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _concurrent_sync(
    call: Callable[[], object], calls: int, concurrency: int
) -> tuple[float, float]:
    """``concurrency`` plain threads, started together, sharing ``calls`` calls."""
    start = threading.Event()
    errors: list[BaseException] = []

    def worker(count: int) -> None:
        start.wait()
        try:
            for _ in range(count):
                call()
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(n,), name=f"bench-sync-{i}")
        for i, n in enumerate(_shares(calls, concurrency))
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.05)  # let every thread reach start.wait()
    cpu, wall = time.process_time(), time.perf_counter()
    start.set()
    for thread in threads:
        thread.join()
    elapsed, used = time.perf_counter() - wall, time.process_time() - cpu
    if errors:
        raise errors[0]
    return elapsed, used


class Bench:
    """The three clients against one server, sharing one event loop for the async ones."""

    def __init__(self, server: ServerProcess, workload: Workload) -> None:
        from baseline import BaselineClient

        import rerankit

        self.server = server
        self.workload = workload
        self.loop = asyncio.new_event_loop()
        docs = workload.documents
        providers = {"cohere": {"api_key": API_KEY, "api_base": server.url}}
        self.baseline = BaselineClient(server.url, API_KEY)
        self.async_client = rerankit.AsyncClient(providers=providers)
        self.sync_client = rerankit.Client(providers=providers)
        model = f"cohere/{MODEL}"
        baseline, async_client, sync_client = self.baseline, self.async_client, self.sync_client

        async def call_baseline() -> object:
            return await baseline.rerank(MODEL, QUERY, docs)

        async def call_async() -> object:
            return await async_client.rerank(model, QUERY, docs)

        def call_sync() -> object:
            return sync_client.rerank(model, QUERY, docs)

        self.async_calls: dict[str, Callable[[], Coroutine[Any, Any, object]]] = {
            "baseline": call_baseline,
            "rerankit_async": call_async,
        }
        self.sync_call: Callable[[], object] = call_sync

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def check_answers(self) -> None:
        """Every client gets the same complete, sorted ranking (a broken client is not fast)."""
        count = len(self.workload.documents)
        rankings: dict[str, list[int]] = {}
        for name, call in self.async_calls.items():
            reply: Any = self._run(call())
            rankings[name] = [r.index for r in reply.results]
        sync_reply: Any = self.sync_call()
        rankings["rerankit_sync"] = [r.index for r in sync_reply.results]
        first = rankings["baseline"]
        if sorted(first) != list(range(count)):
            raise RuntimeError(f"baseline ranking is incomplete: {first}")
        for name, ranking in rankings.items():
            if ranking != first:
                raise RuntimeError(f"{name} ranked {ranking}, baseline ranked {first}")

    def warm_up(self, calls: int) -> None:
        """Open a full pool of connections and run every code path before measuring."""
        w = self.workload
        for call in self.async_calls.values():
            self._run(_sequential_async(call, calls))
            self._run(_concurrent_async(call, w.concurrency, w.concurrency))
        _sequential_sync(self.sync_call, calls)
        _concurrent_sync(self.sync_call, w.concurrency, w.concurrency)

    def measure(self, name: str) -> Sample:
        w = self.workload
        gc.collect()
        if name == "rerankit_sync":
            cpu, latencies = _sequential_sync(self.sync_call, w.calls)
        else:
            cpu, latencies = self._run(_sequential_async(self.async_calls[name], w.calls))
        gc.collect()
        server_before = self.server.cpu_seconds()
        if name == "rerankit_sync":
            wall, conc_cpu = _concurrent_sync(self.sync_call, w.throughput_calls, w.concurrency)
        else:
            wall, conc_cpu = self._run(
                _concurrent_async(self.async_calls[name], w.throughput_calls, w.concurrency)
            )
        server_cpu = _per_call_us(server_before, self.server.cpu_seconds(), w.throughput_calls)
        return Sample(
            cpu_us_per_call=cpu / w.calls * 1e6,
            latency_median_us=statistics.median(latencies) / 1e3,
            throughput_calls_per_s=w.throughput_calls / wall,
            concurrent_cpu_us_per_call=conc_cpu / w.throughput_calls * 1e6,
            server_cpu_us_per_call=server_cpu,
        )

    def close(self) -> None:
        self.sync_client.close()
        self._run(self.async_client.aclose())
        self._run(self.baseline.aclose())
        self._run(self.loop.shutdown_asyncgens())
        self.loop.close()


# --------------------------------------------------------------------------- imports


def _import_us(module: str) -> tuple[float, bool]:
    """Cumulative ``-X importtime`` µs of ``import module`` in a fresh interpreter, and
    whether aiohttp ended up imported."""
    code = f"import {module}, sys; sys.stdout.write(str('aiohttp' in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=60,
        check=True,
    )
    cumulative: float | None = None
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            cumulative = float(parts[1])
    if cumulative is None:
        raise RuntimeError(f"no importtime line for {module!r}")
    return cumulative, proc.stdout.strip() == "True"


def measure_imports(runs: int) -> dict[str, Any]:
    """Median cumulative import time of rerankit and of aiohttp, interleaved."""
    _import_us("rerankit")  # the first runs may write bytecode caches
    _import_us("aiohttp")
    times: dict[str, list[float]] = {"rerankit": [], "aiohttp": []}
    ratios: list[float] = []
    loads_aiohttp = False
    for i in range(runs):
        order = ("rerankit", "aiohttp") if i % 2 == 0 else ("aiohttp", "rerankit")
        got: dict[str, float] = {}
        for module in order:
            got[module], loaded = _import_us(module)
            if module == "rerankit":
                loads_aiohttp = loads_aiohttp or loaded
            times[module].append(got[module])
        ratios.append(got["rerankit"] / got["aiohttp"])
    return {
        "rerankit_ms": statistics.median(times["rerankit"]) / 1e3,
        "aiohttp_ms": statistics.median(times["aiohttp"]) / 1e3,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "import_rerankit_loads_aiohttp": loads_aiohttp,
        "runs": runs,
    }


# --------------------------------------------------------------------------- facade


def measure_facade_overhead(rounds: int, calls: int) -> dict[str, float]:
    """Median µs per call of ``AsyncClient.rerank`` and ``Client.rerank`` with a provider that
    answers at once: the sync facade's own cost, with no server competing for the CPUs."""
    import rerankit
    from rerankit.providers import Provider

    class Instant(Provider):
        name = "bench_instant"

        async def rerank(
            self, request: rerankit.RerankRequest, ctx: Any
        ) -> rerankit.RerankResponse:
            return rerankit.RerankResponse(
                results=[rerankit.RerankResult(index=0, relevance_score=1.0)]
            )

    rerankit.register_provider("bench_instant", Instant)
    documents = ["one document"]
    sync_client, async_client = rerankit.Client(), rerankit.AsyncClient()

    async def async_calls() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await async_client.rerank("bench_instant/m", QUERY, documents)
        return (time.perf_counter() - start) / calls * 1e6

    def sync_calls() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            sync_client.rerank("bench_instant/m", QUERY, documents)
        return (time.perf_counter() - start) / calls * 1e6

    async_us, sync_us = [], []
    try:
        for _ in range(rounds):
            async_us.append(asyncio.run(async_calls()))
            sync_us.append(sync_calls())
    finally:
        sync_client.close()
        rerankit.unregister_provider("bench_instant")
    return {
        "async_us": statistics.median(async_us),
        "sync_us": statistics.median(sync_us),
        "overhead_us": statistics.median(s - a for s, a in zip(sync_us, async_us, strict=True)),
    }


# --------------------------------------------------------------------------- report


@dataclass
class Report:
    config: dict[str, Any]
    machine: dict[str, Any]
    clients: dict[str, dict[str, float | None]]
    imports: dict[str, Any]
    sync_overhead: dict[str, float]
    facade: dict[str, float]
    """The sync facade alone: async vs sync µs per call with an instant, in-process provider."""
    ratios: dict[str, float]
    spread: dict[str, list[float]]
    """Interquartile range (25th, 75th percentile) of each per-round ratio and difference."""
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    rounds: list[dict[str, dict[str, float | None]]] = field(default_factory=list)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _paired(samples: dict[str, list[Sample]], num: str, den: str, attr: str) -> list[float]:
    """``num / den`` of ``attr`` in each round, where both were measured moments apart."""
    return [
        float(getattr(a, attr)) / float(getattr(b, attr))
        for a, b in zip(samples[num], samples[den], strict=True)
    ]


def _quartiles(values: list[float]) -> list[float]:
    if len(values) < 2:
        return [values[0], values[0]]
    q1, _, q3 = statistics.quantiles(values, n=4)
    return [q1, q3]


def summarise(
    samples: dict[str, list[Sample]],
    imports: dict[str, Any],
    config: dict[str, Any],
    facade: dict[str, float],
) -> Report:
    clients = {
        name: {
            key: _median([getattr(s, key) for s in samples[name]])
            for key in Sample.__dataclass_fields__
        }
        for name in CLIENTS
    }
    pairs = list(zip(samples["rerankit_sync"], samples["rerankit_async"], strict=True))
    per_round: dict[str, list[float]] = {
        "cpu_per_call": _paired(samples, "rerankit_async", "baseline", "cpu_us_per_call"),
        "throughput": _paired(samples, "rerankit_async", "baseline", "throughput_calls_per_s"),
        "latency": _paired(samples, "rerankit_async", "baseline", "latency_median_us"),
        "sync_cpu_per_call": _paired(samples, "rerankit_sync", "baseline", "cpu_us_per_call"),
        "sync_throughput": _paired(samples, "rerankit_sync", "baseline", "throughput_calls_per_s"),
        "import": imports["ratios"],
        "sync_overhead_latency_us": [s.latency_median_us - a.latency_median_us for s, a in pairs],
        "sync_overhead_cpu_us": [s.cpu_us_per_call - a.cpu_us_per_call for s, a in pairs],
    }
    medians = {key: statistics.median(values) for key, values in per_round.items()}
    overhead_latency = medians.pop("sync_overhead_latency_us")
    overhead_cpu = medians.pop("sync_overhead_cpu_us")
    ratios = medians
    report = Report(
        config=config,
        machine={
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "aiohttp": _version("aiohttp"),
            "msgspec": _version("msgspec"),
            "rerankit": _version("rerankit"),
        },
        clients=clients,
        imports=imports,
        sync_overhead={"latency_us": overhead_latency, "cpu_us": overhead_cpu},
        facade=facade,
        ratios=ratios,
        spread={key: _quartiles(values) for key, values in per_round.items()},
        rounds=[
            {name: asdict(samples[name][i]) for name in CLIENTS}
            for i in range(len(samples["baseline"]))
        ],
    )
    report.targets = {
        "cpu_per_call_ratio": {
            "value": ratios["cpu_per_call"],
            "target": f"<= {TARGET_CPU_RATIO}",
            "met": ratios["cpu_per_call"] <= TARGET_CPU_RATIO,
        },
        "throughput_ratio": {
            "value": ratios["throughput"],
            "target": f">= {TARGET_THROUGHPUT_RATIO}",
            "met": ratios["throughput"] >= TARGET_THROUGHPUT_RATIO,
        },
        "import_ratio": {
            "value": ratios["import"],
            "target": f"< {TARGET_IMPORT_RATIO:g}",
            "met": ratios["import"] < TARGET_IMPORT_RATIO,
        },
        "sync_overhead_us": {
            "value": overhead_latency,
            "target": f"<= ~{TARGET_SYNC_OVERHEAD_US:g}",
            "met": overhead_latency <= TARGET_SYNC_OVERHEAD_US,
        },
    }
    return report


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown(report: Report) -> str:
    """The results as two markdown tables (per-client figures, then targets) and notes."""
    c, cfg, imp, r = report.clients, report.config, report.imports, report.ratios
    conc = cfg["concurrency"]
    rows = [
        ("client CPU / call (µs)", "cpu_us_per_call", 1),
        ("sequential median latency (µs)", "latency_median_us", 1),
        (f"throughput @ {conc} concurrent (calls/s)", "throughput_calls_per_s", 0),
        (f"client CPU / call @ {conc} concurrent (µs)", "concurrent_cpu_us_per_call", 1),
        (f"server CPU / call @ {conc} concurrent, other process (µs)", "server_cpu_us_per_call", 1),
    ]
    lines = [
        f"| metric | {' | '.join(CLIENT_LABELS[n] for n in CLIENTS)} |",
        "|---|" + "---:|" * len(CLIENTS),
    ]
    for label, key, digits in rows:
        cells = " | ".join(_fmt(c[n][key], digits) for n in CLIENTS)
        lines.append(f"| {label} | {cells} |")

    overhead, spread = report.sync_overhead, report.spread

    def iqr(key: str, fmt: str) -> str:
        low, high = spread[key]
        return f"(IQR {low:{fmt}} to {high:{fmt}})"

    measured = {
        "cpu_per_call_ratio": f"{r['cpu_per_call']:.2f}x {iqr('cpu_per_call', '.2f')}",
        "throughput_ratio": f"{r['throughput']:.2f}x {iqr('throughput', '.2f')}",
        "import_ratio": (
            f"{r['import']:.2f}x ({imp['rerankit_ms']:.1f} ms ÷ {imp['aiohttp_ms']:.1f} ms)"
        ),
        "sync_overhead_us": (
            f"{overhead['latency_us']:.0f} µs {iqr('sync_overhead_latency_us', '.0f')}"
        ),
    }
    labels = {
        "cpu_per_call_ratio": "client CPU / call, rerankit async ÷ baseline",
        "throughput_ratio": f"throughput @ {conc} concurrent, rerankit async ÷ baseline",
        "import_ratio": "`import rerankit` ÷ `import aiohttp`",
        "sync_overhead_us": "sync facade overhead / call (sync - async median latency)",
    }
    goals = {
        "cpu_per_call_ratio": f"≤ {TARGET_CPU_RATIO}x",
        "throughput_ratio": f"≥ {TARGET_THROUGHPUT_RATIO}x",
        "import_ratio": f"< {TARGET_IMPORT_RATIO:g}x",
        "sync_overhead_us": f"≤ ~{TARGET_SYNC_OVERHEAD_US:.0f} µs",
    }
    lines += ["", "| target | measured | goal | met |", "|---|---:|:---:|:---:|"]
    for key, target in report.targets.items():
        met = "yes" if target["met"] else "**no**"
        lines.append(f"| {labels[key]} | {measured[key]} | {goals[key]} | {met} |")

    loads = "yes" if imp["import_rerankit_loads_aiohttp"] else "no"
    lines += [
        "",
        f"Also measured: sync CPU / call {r['sync_cpu_per_call']:.2f}x baseline "
        f"(+{overhead['cpu_us']:.0f} µs CPU over async); "
        f"sync throughput {r['sync_throughput']:.2f}x baseline; "
        f"async median latency {r['latency']:.2f}x baseline; "
        f"`import rerankit` imports aiohttp: {loads}.",
        "",
        f"Sync facade alone (an instant in-process provider, no server competing for the "
        f"CPUs): {report.facade['async_us']:.1f} µs/call async, "
        f"{report.facade['sync_us']:.1f} µs/call sync, "
        f"overhead {report.facade['overhead_us']:.1f} µs/call.",
        "",
        f"IQR: interquartile range over rounds. {cfg['rounds']} rounds x "
        f"({cfg['calls']} sequential + {cfg['throughput_calls']} concurrent calls) per client, "
        f"{cfg['docs']} documents per call; import times: median of {imp['runs']} fresh "
        f"interpreters; {report.machine['cpus']} CPUs, Python {report.machine['python']}, "
        f"aiohttp {report.machine['aiohttp']}, msgspec {report.machine['msgspec']}.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark rerankit against a hand-written aiohttp + msgspec client."
    )
    parser.add_argument("--calls", type=int, help="sequential calls per client per round (300)")
    parser.add_argument(
        "--throughput-calls", type=int, help="concurrent calls per client per round (16 x conc.)"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight (64)")
    parser.add_argument("--docs", type=int, default=20, help="documents per call (20)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (25; 1 with --quick)")
    parser.add_argument("--import-runs", type=int, help="fresh interpreters per import (9)")
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin this process to the first CPU and the server to the second (Linux; a "
        "diagnostic: it removes cross-CPU thread wake-ups, which users do pay)",
    )
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="write JSON results (stdout: -)"
    )
    parser.add_argument("--markdown", action="store_true", help="print the markdown table")
    args = parser.parse_args(argv)
    if args.calls is None:
        args.calls = 30 if args.quick else 300
    if args.rounds is None:
        args.rounds = 1 if args.quick else 25
    if args.throughput_calls is None:
        args.throughput_calls = (4 if args.quick else 16) * args.concurrency
    if args.import_runs is None:
        args.import_runs = 1 if args.quick else 9
    for name in ("calls", "throughput_calls", "concurrency", "docs", "rounds", "import_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> Report:
    for path in (str(HERE), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    workload = Workload(
        documents=make_documents(args.docs),
        calls=args.calls,
        throughput_calls=args.throughput_calls,
        concurrency=args.concurrency,
    )
    config = {
        "calls": workload.calls,
        "throughput_calls": workload.throughput_calls,
        "concurrency": workload.concurrency,
        "docs": args.docs,
        "rounds": args.rounds,
        "quick": bool(args.quick),
        "pinned": bool(args.pin),
    }
    _log(f"imports: {args.import_runs} fresh interpreters each")
    imports = measure_imports(args.import_runs)
    server_cpu = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs at least two CPUs")
        os.sched_setaffinity(0, {cpus[0]})
        server_cpu = cpus[1]
    server = ServerProcess(server_cpu)
    try:
        bench = Bench(server, workload)
        try:
            bench.check_answers()
            bench.warm_up(10 if args.quick else 200)
            samples: dict[str, list[Sample]] = {name: [] for name in CLIENTS}
            for round_no in range(args.rounds):
                shift = round_no % len(CLIENTS)
                order = CLIENTS[shift:] + CLIENTS[:shift]
                for name in order:
                    samples[name].append(bench.measure(name))
                _log(
                    f"round {round_no + 1}/{args.rounds}: "
                    + ", ".join(
                        f"{n} {samples[n][-1].cpu_us_per_call:.0f} µs CPU/call "
                        f"{samples[n][-1].throughput_calls_per_s:.0f}/s"
                        for n in CLIENTS
                    )
                )
        finally:
            bench.close()
    finally:
        server.close()
    _log("sync facade alone: instant provider, async vs sync")
    facade = measure_facade_overhead(3 if args.quick else 9, 200 if args.quick else 2000)
    return summarise(samples, imports, config, facade)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    if args.json:
        text = json.dumps(asdict(report), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if args.markdown or not args.json:
        out = sys.stderr if args.json == "-" else sys.stdout
        print(markdown(report), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
