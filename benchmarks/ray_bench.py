"""Rows per second on Ray Data vs ``rerank_many`` in one process, with and without a quota.

    python benchmarks/ray_bench.py             # markdown table
    python benchmarks/ray_bench.py --json      # the same figures as JSON
    python benchmarks/ray_bench.py --quick     # fewer rows (a smoke test)

A fake Cohere server in this process answers every request after ``--latency`` seconds (50 ms).
Each row is one request. Every setup keeps ``--in-flight`` rows in flight per worker: one
process running ``rerank_many``, then ``rerank_dataset`` on a local Ray (``num_cpus=2``) with 1
and 2 actors. Rates come from the times the server received the requests (first to last), so
Ray's start-up and actor creation are not counted.

Without a quota, the rate grows with the actors. With ``--quota`` requests per minute (shared
by all actors through ``ClusterQuota``), the first minute's burst goes at once and the rest is
pinned to the quota: the "after burst" column is the requests past the burst divided by the
whole time, which a shared quota keeps at the refill rate (quota / 60 per second).
Last, the quota actor alone: a reservation's round trip, and reservations per second from
one process. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from rerankit import AsyncClient  # noqa: E402
from rerankit.testing import CohereFake, FakeServer, ReceivedRequest, Reply  # noqa: E402

KEY = "bench-key-0123456789"
MODEL = "cohere/rerank-v3.5"


class SlowFake:
    """CohereFake answering after ``latency`` seconds, noting when each request arrived."""

    def __init__(self, latency: float) -> None:
        self.fake = CohereFake(KEY)
        self.latency = latency
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.times.append(time.monotonic())
        return msgspec.structs.replace(self.fake(request), delay=self.latency)

    def take(self) -> list[float]:
        with self._lock:
            times, self.times = sorted(self.times), []
        return times


def jobs(count: int) -> list[dict[str, Any]]:
    return [
        {"query": f"query {i}", "documents": [f"doc {i} a", f"doc {i} b", f"doc {i} c"]}
        for i in range(count)
    ]


def options(server: FakeServer, per_minute: float | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"api_key": KEY, "api_base": server.url, "max_retries": 0}
    if per_minute:
        settings["requests_per_minute"] = per_minute
    return {"providers": {"cohere": settings}, "max_connections": 256}


def rates(times: list[float], burst: float | None) -> dict[str, float | None]:
    """Requests per second, first to last; and the requests past the first ``burst`` over the
    same time (what a quota refilling at ``burst`` per minute lets through: burst / 60)."""
    seconds = times[-1] - times[0]
    after = None if burst is None else (len(times) - burst) / seconds
    return {
        "rows_per_s": round((len(times) - 1) / seconds, 1),
        "after_burst": None if after is None else round(after, 2),
    }


def one_process(server: FakeServer, count: int, in_flight: int, quota: float | None) -> None:
    async def run() -> None:
        async with AsyncClient(**options(server, quota)) as client:
            answers = await client.rerank_many(MODEL, jobs(count), concurrency=in_flight)
        assert not [a for a in answers if isinstance(a, Exception)]

    asyncio.run(run())


def on_ray(
    server: FakeServer, count: int, in_flight: int, quota: float | None, actors: int, name: str
) -> None:
    import ray.data

    from rerankit.ray import ClusterQuota, rerank_dataset

    ds = rerank_dataset(
        ray.data.from_items(jobs(count), override_num_blocks=8),
        model=MODEL,
        concurrency=actors,
        rows_in_flight=in_flight,
        requests_per_minute=quota,
        client_options=options(server, None),
        quota=ClusterQuota(name),
    )
    assert all(row["rerank_error"] is None for row in ds.iter_rows())


def quota_actor(calls: int) -> dict[str, float]:
    """The quota actor alone: one caller's reservation round trip, and reservations per second
    with ``calls`` in flight at once."""
    import ray

    from rerankit import Quota
    from rerankit.ray import ClusterQuota

    actor = ClusterQuota("bench-quota-actor").actor
    quota = Quota("cohere", "bench", 1e12, None)
    ray.get(actor.reserve.remote(quota, 0))
    start = time.perf_counter()
    for _ in range(calls // 10):
        ray.get(actor.reserve.remote(quota, 0))
    round_trip = (time.perf_counter() - start) / (calls // 10)

    async def concurrent() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(actor.reserve.remote(quota, 0) for _ in range(calls)))
        return calls / (time.perf_counter() - start)

    return {"round_trip_ms": round(round_trip * 1000, 2), "per_s": round(asyncio.run(concurrent()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600, help="rows without a quota")
    parser.add_argument("--quota", type=float, default=600, help="requests per minute")
    parser.add_argument("--past-burst", type=int, default=60, help="rows past the quota's burst")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--in-flight", type=int, default=8, help="rows in flight per worker")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer rows, a smaller quota")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.quota, args.past_burst = 120, 60, 4

    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")]))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024**2,
        log_to_driver=False,
        logging_level="ERROR",
        configure_logging=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    fake = SlowFake(args.latency)
    results = []
    with FakeServer(fake, record=False) as server:
        for quota in (None, args.quota):
            count = args.rows if quota is None else int(quota) + args.past_burst
            for actors in (0, 1, 2):
                if actors == 0:
                    label = "rerank_many, 1 process"
                    one_process(server, count, args.in_flight, quota)
                else:
                    label = f"Ray, {actors} actor{'s' if actors > 1 else ''}"
                    name = f"bench-{actors}-{quota}"
                    on_ray(server, count, args.in_flight, quota, actors, name)
                figures = rates(fake.take(), quota)
                results.append(
                    {"setup": label, "quota_per_minute": quota, "rows": count, **figures}
                )
    keeper = quota_actor(300 if args.quick else 3000)
    ray.shutdown()
    if args.json:
        report = {"latency": args.latency, "in_flight": args.in_flight, "results": results}
        print(json.dumps({**report, "quota_actor": keeper}))
        return
    print(f"latency {args.latency * 1000:.0f} ms, {args.in_flight} rows in flight per worker\n")
    print("| setup | quota (req/min) | rows | rows/s | rows/s after burst |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        quota_text = "none" if r["quota_per_minute"] is None else f"{r['quota_per_minute']:.0f}"
        after = "" if r["after_burst"] is None else f"{r['after_burst']:.2f}"
        print(f"| {r['setup']} | {quota_text} | {r['rows']} | {r['rows_per_s']:.1f} | {after} |")
    print(
        f"\nquota actor: {keeper['round_trip_ms']:.2f} ms per reservation (one caller), "
        f"{keeper['per_s']:,} reservations/s (many in flight)"
    )


if __name__ == "__main__":
    main()
