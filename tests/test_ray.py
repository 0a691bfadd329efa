"""Reranking on Ray Data, on a local Ray (``ray.init(num_cpus=2)``, once for this module).

Hosted rows go over real HTTP to a fake Cohere server in this process; Ray's workers import
rerankit from this checkout (``PYTHONPATH``), and nothing leaves the machine (no usage stats,
no dashboard).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, RerankEvent
from rerankit.testing import CohereFake, FakeServer, ReceivedRequest, Reply

ray = pytest.importorskip("ray")
ray_data = pytest.importorskip("ray.data")

from ray.data.expressions import col  # noqa: E402

from rerankit.ray import ClusterQuota, rerank_dataset  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

KEY = "ray-key-0123456789-SECRET"
MODEL = "cohere/rerank-v3.5"
ROOT = Path(rerankit.__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT) if not path else f"{ROOT}{os.pathsep}{path}"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024**2,
        log_to_driver=False,
        configure_logging=False,
    )
    ray_data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()
        if path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = path


class Recorder:
    """CohereFake, noting when each request arrived, failing queries that start with "bad"."""

    def __init__(self, key: str = KEY) -> None:
        self.fake = CohereFake(key)
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.times.append(time.monotonic())
        if str(request.json().get("query", "")).startswith("bad"):
            return Reply(status=400, body={"message": "this query is refused"})
        return self.fake(request)


def served(recorder: Recorder) -> FakeServer:
    return FakeServer(recorder, record=False)


def cohere(server: FakeServer, key: str = KEY) -> dict[str, Any]:
    return {"providers": {"cohere": {"api_key": key, "api_base": server.url, "max_retries": 0}}}


def rows(count: int) -> list[dict[str, Any]]:
    words = ["alpha", "beta", "gamma", "delta"]
    return [
        {
            "query": f"{words[i % 4]} {i}",
            "documents": [f"{words[(i + j) % 4]} {j} {i}" for j in range(1 + i % 5)],
        }
        for i in range(count)
    ]


def expected(model: str, jobs: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    """What ``rerank_many`` gives for ``jobs``, as the columns ``rerank_dataset`` adds."""
    import asyncio

    async def run() -> list[Any]:
        async with AsyncClient(**options) as client:
            return await client.rerank_many(model, jobs, top_n=3, concurrency=4)

    out = []
    for answer in asyncio.run(run()):
        if isinstance(answer, Exception):
            out.append({"error": f"{type(answer).__name__}: {answer}"})
        else:
            out.append(
                {
                    "indices": [r.index for r in answer.results],
                    "scores": [r.relevance_score for r in answer.results],
                    "cost": answer.cost,
                    "error": None,
                }
            )
    return out


def columns(row: dict[str, Any]) -> dict[str, Any]:
    if row["rerank_error"] is not None:
        return {"error": row["rerank_error"]}
    return {
        "indices": row["rerank_indices"],
        "scores": row["rerank_scores"],
        "cost": row["rerank_cost"],
        "error": None,
    }


def by_query(table: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["query"]: row for row in table}


def test_hosted_rows_equal_rerank_many_and_failing_rows_keep_their_errors() -> None:
    jobs = rows(30)
    jobs.append({"query": "bad query", "documents": ["a", "b"]})
    jobs.append({"query": "", "documents": ["a"]})  # refused before any request
    recorder = Recorder()
    with served(recorder) as server:
        want = expected(MODEL, jobs, **cohere(server))
        ds = rerank_dataset(
            ray_data.from_items(jobs),
            model=MODEL,
            top_n=3,
            concurrency=2,
            client_options=cohere(server),
            quota=ClusterQuota("quota-hosted"),
        )
        got = by_query(ds.take_all())
    assert [columns(got[job["query"]]) for job in jobs] == want
    assert got["bad query"]["rerank_error"].startswith("BadRequestError: ")
    assert got[""]["rerank_error"].startswith("ConfigurationError: ")
    assert got["bad query"]["rerank_indices"] is None
    assert KEY not in repr(got)


def test_local_bm25_rows_equal_rerank_many_and_failed_rows_are_one_filter() -> None:
    jobs = rows(20)
    jobs.append({"query": "alpha", "documents": "not a list"})
    want = expected("local/bm25", jobs)
    ds = rerank_dataset(
        ray_data.from_items(jobs, override_num_blocks=2),
        model="local/bm25",
        top_n=3,
        concurrency=2,
        num_cpus=0.5,
        return_documents=True,
    ).materialize()
    table = ds.take_all()
    got = by_query(table)
    assert [columns(got[job["query"]]) for job in jobs if job["query"] != "alpha"] == [
        w for job, w in zip(jobs, want, strict=True) if job["query"] != "alpha"
    ]
    first = got[jobs[0]["query"]]
    assert first["rerank_documents"] == [jobs[0]["documents"][i] for i in first["rerank_indices"]]
    failed = ds.filter(expr=col("rerank_error").is_not_null()).take_all()
    assert [row["query"] for row in failed] == ["alpha"]
    assert failed[0]["rerank_error"].startswith("ConfigurationError: ")


def test_two_actors_share_one_quota() -> None:
    """120 requests a minute (2 a second, bursting to 120) for 2 actors together: in any
    window of the server's arrivals, at most the burst plus the window's refill (and a second's
    refill for scheduling jitter). Two separate buckets would let all 130 through at once."""
    per_minute, count = 120, 130
    recorder = Recorder("ray-quota-key-0123456789")
    with served(recorder) as server:
        ds = rerank_dataset(
            ray_data.from_items(rows(count), override_num_blocks=4),
            model=MODEL,
            concurrency=2,
            requests_per_minute=per_minute,
            client_options=cohere(server, "ray-quota-key-0123456789"),
            quota=ClusterQuota("quota-shared"),
        )
        table = ds.take_all()
    assert all(row["rerank_error"] is None for row in table)
    times = sorted(recorder.times)
    assert len(times) == count
    rate = per_minute / 60
    worst = max(
        (j - i + 1) - (per_minute + rate * (times[j] - times[i]))
        for i in range(count)
        for j in range(i, count)
    )
    assert worst <= rate  # one second of refill for jitter
    assert ClusterQuota("quota-shared").waited()["cohere"] > 0


def test_retry_after_seen_by_one_worker_holds_back_every_worker() -> None:
    """The first request gets a 429 asking for 1.5 s; the rows reserved after it, on either
    actor, wait for that debt (seconds the quota actor handed out), and every row succeeds."""
    recorder = Recorder("ray-retry-key-0123456789")
    with served(recorder) as server:
        server.fail(Reply(status=429, headers={"retry-after-ms": "1500"}, body={"message": "slow"}))
        options = cohere(server, "ray-retry-key-0123456789")
        options["providers"]["cohere"]["max_retries"] = 1
        ds = rerank_dataset(
            ray_data.from_items(rows(16), override_num_blocks=2),
            model=MODEL,
            concurrency=2,
            rows_in_flight=2,
            requests_per_minute=10**6,  # never the limit: waits come from the Retry-After only
            client_options=options,
            quota=ClusterQuota("quota-retry-after"),
        )
        table = ds.take_all()
    assert all(row["rerank_error"] is None for row in table)
    assert len(recorder.times) == 16  # the 429 was served before the handler
    assert ClusterQuota("quota-retry-after").waited()["cohere"] > 1.0


class ExitOnce:
    """A hook that ends its actor's process at the first request, once per run (a marker)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, event: RerankEvent) -> None:
        if event.kind != "request":
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(1)


def test_an_actor_killed_mid_run_loses_and_duplicates_no_row(tmp_path: Path) -> None:
    jobs = [{**job, "row": i} for i, job in enumerate(rows(40))]
    marker = tmp_path / "killed"
    recorder = Recorder()
    with served(recorder) as server:
        options = cohere(server)
        options["hooks"] = [ExitOnce(marker)]
        ds = rerank_dataset(
            ray_data.from_items(jobs, override_num_blocks=4),
            model=MODEL,
            concurrency=2,
            requests_per_minute=10**6,  # any quota makes each request wait on the hook first
            client_options=options,
            quota=ClusterQuota("quota-killed"),
        )
        table = ds.take_all()
    assert marker.exists()  # an actor did die
    assert sorted(row["row"] for row in table) == list(range(40))
    assert all(row["rerank_error"] is None for row in table)


def test_arguments_are_checked_before_anything_runs() -> None:
    ds = ray_data.from_items(rows(2))
    with pytest.raises(rerankit.ConfigurationError, match="concurrency must be"):
        rerank_dataset(ds, model="local/bm25", concurrency=0)
    with pytest.raises(rerankit.ConfigurationError, match="num_cpus must be"):
        rerank_dataset(ds, model="local/bm25", num_cpus=-1)
    with pytest.raises(rerankit.ConfigurationError, match="rows_in_flight must be"):
        rerank_dataset(ds, model="local/bm25", rows_in_flight=0)
    with pytest.raises(rerankit.UnknownProviderError):
        rerank_dataset(ds, model="nope/model")


def test_cli_batch_on_ray_writes_what_batch_writes_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from rerankit.cli import main

    jobs = [
        {**job, "id": f"job-{i}"} if i % 2 else {**job, "top_n": 2}
        for i, job in enumerate(rows(12))
    ]
    jobs.append({"query": "bad query", "documents": ["a"]})
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        "\n".join(json.dumps(job) for job in jobs) + '\n{"query": 1}\n', encoding="utf-8"
    )
    recorder = Recorder()
    with served(recorder) as server:
        monkeypatch.setenv("COHERE_API_KEY", KEY)
        monkeypatch.setenv("COHERE_API_BASE", server.url)
        common = ["batch", str(source), "-m", MODEL, "-n", "3", "--documents"]
        plain, on_ray = tmp_path / "plain.jsonl", tmp_path / "ray.jsonl"
        assert main([*common, "-o", str(plain)]) == 1  # two jobs fail
        assert main([*common, "-o", str(on_ray), "--ray", "--actors", "2"]) == 1

        def records(path: Path) -> list[dict[str, Any]]:
            """The output lines by line number, without the fake's request ids (a counter)."""
            lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            for line in lines:
                assert line.pop("request_id", "fake-").startswith("fake-")
            return sorted(lines, key=lambda record: record["line"])

        assert records(on_ray) == records(plain)
        assert len(records(on_ray)) == len(jobs) + 1
        # Drop two results: the rerun reranks those two and the failed jobs, and no other.
        kept = on_ray.read_text(encoding="utf-8").splitlines(keepends=True)
        keep = [line for line in kept if '"error"' not in line][2:]
        on_ray.write_text("".join(keep), encoding="utf-8")
        before = len(recorder.times)
        assert main([*common, "-o", str(on_ray), "--ray"]) == 1
        assert len(recorder.times) - before == 3  # two dropped jobs and "bad query"
        assert records(on_ray) == records(plain)


def test_cli_batch_refuses_actors_without_ray(tmp_path: Path) -> None:
    from rerankit.cli import main

    source = tmp_path / "jobs.jsonl"
    source.write_text('{"query": "a", "documents": ["a"]}\n', encoding="utf-8")
    assert main(["batch", str(source), "-m", "local/bm25", "--actors", "2"]) == 2


def test_the_quota_keeper_shares_retry_after_and_keeps_quotas_apart() -> None:
    from rerankit.ray._quota import QuotaKeeper

    keeper = QuotaKeeper()
    limited = rerankit.Quota("cohere", "fp", 60.0, None)
    assert keeper.reserve(limited, 0) == 0.0
    keeper.penalise(limited, 30.0)  # one worker saw Retry-After: 30
    assert keeper.reserve(limited, 0) > 30.0  # the next caller, from any worker, waits
    other = rerankit.Quota("cohere", "fp", 120.0, None)  # another job's limits: its own bucket
    assert keeper.reserve(other, 0) == 0.0
    assert keeper.waited()["cohere"] > 30.0


def test_a_cluster_quota_pickles_as_its_name() -> None:
    import pickle

    quota = pickle.loads(pickle.dumps(ClusterQuota("some-name", namespace="ns")))
    assert (quota.name, quota.namespace, quota._handle) == ("some-name", "ns", None)


def test_local_models_get_onnx_threads_matching_the_actor_cpus() -> None:
    from rerankit.ray._dataset import _num_cpus, _provider_settings

    assert _num_cpus(None, "local") == 1.0
    assert _num_cpus(None, "cohere") == 0.25
    settings = _provider_settings({"local": {"options": {"batch_size": 8}}}, "local", 30, None, 2)
    assert settings["local"].options == {"batch_size": 8, "threads": 2}
    assert settings["local"].requests_per_minute == 30
    chosen = _provider_settings({"local": {"options": {"threads": 3}}}, "local", None, None, 2)
    assert chosen["local"].options == {"threads": 3}
    assert "local" not in _provider_settings(None, "cohere", None, None, 0.25)
