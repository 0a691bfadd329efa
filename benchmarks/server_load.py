"""Load benchmark of ``rerankit serve``: many concurrent clients, the server's added latency.

    python benchmarks/server_load.py --markdown        # full run (about 3 minutes), tables
    python benchmarks/server_load.py --quick --json    # a tiny run, JSON on stdout

Processes on 127.0.0.1: a fast fake Cohere v2 upstream (``fake_cohere_server.py``), ``rerankit
serve`` routing model ``rerank-v3.5`` to it, a hand-written minimal aiohttp proxy in front of
the same upstream (the baseline: what any extra HTTP hop costs on this machine), and this load
generator. The same ``POST /v2/rerank`` goes to each of three paths:

* ``direct``: straight to the upstream;
* ``baseline_proxy``: through the minimal proxy (check the key, forward the bytes, return the
  answer's bytes);
* ``via_server``: through ``rerankit serve`` (parse, route, call with rerankit, answer).

Each path gets ``--clients`` concurrent clients, each on its own connection, under two loads:

* **back to back**: every client sends its next request as soon as the last one is answered,
  so the figures are the most each path can do on this machine (queueing included);
* **paced**: the clients together offer a fixed rate, for each of ``--rates`` (requests per
  second in total), each client on its own schedule with a random phase; a late answer delays
  that client's next request rather than bunching them.

Before each phase every client makes two requests, so connections (and the server's upstream
pool) are open. Each round measures the paths in a rotated order; figures are medians over
rounds, and added latency is the median over rounds of the difference of median latencies.
The target, the server adds under 1 ms median at 100 clients, is reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

UPSTREAM_KEY = "bench-upstream-key-0123456789"
CLIENT_KEY = "bench-client-key-0123456789"
MODEL = "rerank-v3.5"
QUERY = "how do I rotate the API keys of a production deployment without downtime"
TARGET_ADDED_MS = 1.0
TICK = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
PATHS = ("direct", "baseline_proxy", "via_server")

CONFIG = """
[server]
api_keys_env = "RERANKIT_BENCH_KEYS"
max_connections = 200

[models."{model}"]
model = "cohere/{model}"

[providers.cohere]
api_base = "{upstream}"
max_retries = 0
"""


def make_documents(count: int) -> list[str]:
    """``count`` deterministic documents of ~25 words each."""
    words = [
        *("key", "rotation", "deployment", "production", "secret", "token", "downtime"),
        *("rollout", "service", "credential", "vault", "cluster", "restart", "replica"),
        *("config", "environment", "access", "policy", "audit", "log", "invoice"),
    ]
    return [
        f"Document {i}: " + " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(24))
        for i in range(count)
    ]


# --------------------------------------------------------------------------- processes


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def cpu_seconds(pid: int) -> float | None:
    """A process's CPU time so far (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK


class Upstream:
    """``fake_cohere_server.py`` in a child process; it exits when its stdin closes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "fake_cohere_server.py"), "--api-key", UPSTREAM_KEY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the fake upstream did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Listener:
    """A server in a child process that logs ``listening on <url>`` on standard error."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str]) -> None:
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=out, env=env
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "listening on " in text:
                self.url = text.split("listening on ", 1)[1].split()[0]
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.close()
        raise RuntimeError(f"{command} did not start:\n{log.read_text()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(upstream: str, workdir: Path) -> Listener:
    """``python -m rerankit serve`` in front of ``upstream``."""
    config = workdir / "server.toml"
    config.write_text(CONFIG.format(model=MODEL, upstream=upstream), encoding="utf-8")
    return Listener(
        [sys.executable, "-m", "rerankit", "serve", "-c", str(config), "--port", "0"],
        workdir / "server.log",
        _child_env(COHERE_API_KEY=UPSTREAM_KEY, RERANKIT_BENCH_KEYS=CLIENT_KEY),
    )


def start_baseline_proxy(upstream: str, workdir: Path) -> Listener:
    """This script's ``--baseline-proxy`` mode in front of ``upstream``."""
    return Listener(
        [sys.executable, str(Path(__file__).resolve()), "--baseline-proxy", upstream],
        workdir / "proxy.log",
        _child_env(),
    )


async def baseline_proxy(upstream: str) -> None:
    """The baseline: the least an aiohttp proxy does (check the key, forward, answer)."""
    expected = f"Bearer {CLIENT_KEY}"
    forward = {"Authorization": f"Bearer {UPSTREAM_KEY}", "Content-Type": "application/json"}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200), headers=forward)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, body=b'{"message":"invalid api token"}')
        async with session.post(f"{upstream}/v2/rerank", data=body) as answer:
            data = await answer.read()
            status = answer.status
        return web.Response(status=status, body=data, content_type="application/json")

    runner = web.ServerRunner(web.Server(handle, access_log=None), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await session.close()


# --------------------------------------------------------------------------- load


@dataclass
class Sample:
    """One phase on one path."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    server_cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_phase(
    url: str,
    key: str,
    body: bytes,
    *,
    clients: int,
    seconds: float,
    rate: float | None,
    expect: int,
    pid: int | None = None,
) -> Sample:
    """``clients`` clients for ``seconds``: back to back (``rate`` None) or paced; with
    ``pid``, the CPU time that process spent during the phase."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one() -> None:
            nonlocal errors
            sent = time.perf_counter()
            async with session.post(f"{url}/v2/rerank", data=body) as response:
                payload = await response.read()
            latencies.append((time.perf_counter() - sent) * 1000)
            if response.status != 200 or payload.count(b'"index"') != expect:
                errors += 1

        async def client(start: float, end: float) -> None:
            interval = clients / rate if rate else 0.0
            due = start + random.random() * interval
            while True:
                now = time.perf_counter()
                if now >= end:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                    if time.perf_counter() >= end:
                        return
                await one()
                due = max(due + interval, time.perf_counter()) if interval else 0.0

        async def warm() -> None:
            for _ in range(2):
                await one()

        await asyncio.gather(*(warm() for _ in range(clients)))
        latencies.clear()
        errors = 0
        before = cpu_seconds(pid) if pid is not None else None
        start = time.perf_counter()
        await asyncio.gather(*(client(start, start + seconds) for _ in range(clients)))
        elapsed = time.perf_counter() - start
        after = cpu_seconds(pid) if pid is not None else None
    cpu = after - before if before is not None and after is not None else None
    return Sample(len(latencies), errors, elapsed, latencies, cpu)


async def measure(
    targets: dict[str, tuple[str, str, int | None]], args: argparse.Namespace
) -> dict[str, dict[str, list[Sample]]]:
    """Every phase on every path, ``args.rounds`` times, in a rotated order."""
    body = json.dumps({"model": MODEL, "query": QUERY, "documents": make_documents(args.docs)})
    data = body.encode()
    phases = [("back_to_back", None)] + [(f"paced_{rate:g}", rate) for rate in args.rates]
    found: dict[str, dict[str, list[Sample]]] = {
        mode: {path: [] for path in targets} for mode, _ in phases
    }
    for number in range(args.rounds):
        order = list(targets)[number % len(targets) :] + list(targets)[: number % len(targets)]
        for mode, rate in phases:
            for path in order:
                url, key, pid = targets[path]
                sample = await run_phase(
                    url,
                    key,
                    data,
                    clients=args.clients,
                    seconds=args.seconds,
                    rate=rate,
                    expect=args.docs,
                    pid=pid,
                )
                found[mode][path].append(sample)
    return found


# --------------------------------------------------------------------------- report


def summarise(samples: list[Sample]) -> dict[str, Any]:
    cpu = [s.server_cpu_s / s.requests * 1e6 for s in samples if s.server_cpu_s and s.requests]
    return {
        "requests_per_s": statistics.median(s.rps for s in samples),
        "p50_ms": statistics.median(s.percentile(0.50) for s in samples),
        "p90_ms": statistics.median(s.percentile(0.90) for s in samples),
        "p99_ms": statistics.median(s.percentile(0.99) for s in samples),
        "requests": sum(s.requests for s in samples),
        "errors": sum(s.errors for s in samples),
        "proxy_cpu_us_per_request": statistics.median(cpu) if cpu else None,
    }


def added(direct: list[Sample], via: list[Sample]) -> dict[str, float]:
    """What ``via`` adds to ``direct``: medians over rounds of per-round differences."""
    pairs = list(zip(direct, via, strict=True))
    return {
        "p50_ms": statistics.median(v.percentile(0.5) - d.percentile(0.5) for d, v in pairs),
        "p90_ms": statistics.median(v.percentile(0.9) - d.percentile(0.9) for d, v in pairs),
        "p50_ratio": statistics.median(v.percentile(0.5) / d.percentile(0.5) for d, v in pairs),
        "throughput_ratio": statistics.median(v.rps / d.rps for d, v in pairs),
    }


def report(found: dict[str, dict[str, list[Sample]]], args: argparse.Namespace) -> dict[str, Any]:
    modes = {
        mode: {path: summarise(samples) for path, samples in paths.items()}
        for mode, paths in found.items()
    }
    extra = {
        mode: {
            "server": added(paths["direct"], paths["via_server"]),
            "baseline_proxy": added(paths["direct"], paths["baseline_proxy"]),
            "server_over_baseline": added(paths["baseline_proxy"], paths["via_server"]),
        }
        for mode, paths in found.items()
    }
    targets = {
        mode: {
            "added_p50_ms": rows["server"]["p50_ms"],
            "met": rows["server"]["p50_ms"] < TARGET_ADDED_MS,
        }
        for mode, rows in extra.items()
        if mode.startswith("paced_")
    }
    return {
        "modes": modes,
        "added": extra,
        "target": {"goal_ms": TARGET_ADDED_MS, "paced": targets},
        "config": {
            key: value
            for key, value in vars(args).items()
            if key not in ("json", "markdown", "baseline_proxy")
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "aiohttp": aiohttp.__version__,
        },
    }


def markdown(result: dict[str, Any]) -> str:
    config = result["config"]
    clients = config["clients"]
    labels = {
        mode: f"{mode.removeprefix('paced_')} req/s"
        if mode.startswith("paced_")
        else "back to back"
        for mode in result["modes"]
    }
    lines = [
        f"| load ({clients} clients) | path | requests/s | p50 ms | p90 ms | p99 ms "
        "| proxy CPU / request |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for mode, paths in result["modes"].items():
        for path, row in paths.items():
            cpu = row["proxy_cpu_us_per_request"]
            lines.append(
                f"| {labels[mode]} | {path.replace('_', ' ')} | {row['requests_per_s']:,.0f} | "
                f"{row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['p99_ms']:.2f} | "
                f"{'' if cpu is None else f'{cpu:.0f} µs'} |"
            )
    lines += [
        "",
        f"| load ({clients} clients) | server adds (p50) | p50 ratio | baseline proxy adds (p50) "
        "| server over baseline (p50) | server throughput ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, rows in result["added"].items():
        server, base, over = rows["server"], rows["baseline_proxy"], rows["server_over_baseline"]
        lines.append(
            f"| {labels[mode]} | {server['p50_ms']:+.2f} ms | {server['p50_ratio']:.2f}x | "
            f"{base['p50_ms']:+.2f} ms | {over['p50_ms']:+.2f} ms | "
            f"{server['throughput_ratio']:.2f}x |"
        )
    target = result["target"]
    met = [mode.removeprefix("paced_") for mode, row in target["paced"].items() if row["met"]]
    rates = ", ".join(mode.removeprefix("paced_") for mode in target["paced"])
    errors = sum(row["errors"] for paths in result["modes"].values() for row in paths.values())
    lines += [
        "",
        f"Target: the server adds under {target['goal_ms']:g} ms median at {clients} clients: "
        + (f"met at {', '.join(met)} req/s" if met else "**not met**")
        + f" (paced loads measured: {rates} req/s).",
        f"{config['rounds']} rounds x {config['seconds']:g} s per load and path, "
        f"{config['docs']} documents per request; failed requests: {errors}.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    upstream = Upstream()
    started: list[Listener] = []
    try:
        with tempfile.TemporaryDirectory(prefix="rerankit-bench-") as workdir:
            server = start_server(upstream.url, Path(workdir))
            started.append(server)
            proxy = start_baseline_proxy(upstream.url, Path(workdir))
            started.append(proxy)
            targets = {
                "direct": (upstream.url, UPSTREAM_KEY, None),
                "baseline_proxy": (proxy.url, CLIENT_KEY, proxy.proc.pid),
                "via_server": (server.url, CLIENT_KEY, server.proc.pid),
            }
            found = asyncio.run(measure(targets, args))
    finally:
        for listener in started:
            listener.close()
        upstream.close()
    return report(found, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (100)")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(rate) for rate in text.split(",")],
        default=[100.0, 250.0, 500.0, 1000.0],
        help="paced loads, requests/s in total, comma-separated (100,250,500,1000)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per load (3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--docs", type=int, default=20, help="documents per request (20)")
    parser.add_argument("--quick", action="store_true", help="1 round of 0.5 s loads")
    parser.add_argument("--markdown", action="store_true", help="print the tables (default)")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH", help="write JSON")
    parser.add_argument("--baseline-proxy", metavar="UPSTREAM", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_proxy:
        asyncio.run(baseline_proxy(args.baseline_proxy))
        return 0
    if args.quick:
        args.rounds, args.seconds = 1, 0.5
    result = run(args)
    errors = sum(row["errors"] for paths in result["modes"].values() for row in paths.values())
    if errors:
        print(f"warning: {errors} requests failed", file=sys.stderr)
    if args.json == "-":
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.markdown or not args.json:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
