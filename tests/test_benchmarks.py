"""Smoke test of ``benchmarks/run.py``: it runs and reports every metric. Speed is not tested."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ("baseline", "rerankit_async", "rerankit_sync")
CLIENT_METRICS = (
    "cpu_us_per_call",
    "latency_median_us",
    "throughput_calls_per_s",
    "concurrent_cpu_us_per_call",
)
RATIOS = ("cpu_per_call", "throughput", "latency", "sync_cpu_per_call", "sync_throughput", "import")
TARGETS = ("cpu_per_call_ratio", "throughput_ratio", "import_ratio", "sync_overhead_us")


def positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def run_benchmark(script: str, *args: str, timeout: float = 120) -> Any:
    """Run ``benchmarks/<script>`` with ``args`` from the checkout; its JSON report."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_provider_benchmark_reports_every_provider() -> None:
    report = run_benchmark("providers.py", "--rounds", "1", "--calls", "50", "--json")
    providers = ("cohere", "jina_ai", "together_ai", "hosted_vllm", "voyage", "huggingface")
    assert set(report) == {"baseline", *providers}
    for name, row in report.items():
        assert positive(row["us_per_call"]), name
        assert positive(row["ratio"]), name


@pytest.mark.slow
def test_quick_benchmark_reports_every_metric() -> None:
    report = run_benchmark("run.py", "--quick", "--json", timeout=60)

    for client in CLIENTS:
        for metric in CLIENT_METRICS:
            assert positive(report["clients"][client][metric]), (client, metric)
    assert positive(report["imports"]["rerankit_ms"])
    assert positive(report["imports"]["aiohttp_ms"])
    assert report["imports"]["import_rerankit_loads_aiohttp"] in (True, False)
    for ratio in RATIOS:
        assert positive(report["ratios"][ratio]), ratio
    # A difference of two noisy medians: finite, but its sign is not guaranteed on a tiny run.
    for key in ("latency_us", "cpu_us"):
        assert math.isfinite(report["sync_overhead"][key]), key
    assert positive(report["facade"]["async_us"])
    assert positive(report["facade"]["sync_us"])
    assert math.isfinite(report["facade"]["overhead_us"])
    for target in TARGETS:
        assert math.isfinite(report["targets"][target]["value"]), target
        assert report["targets"][target]["met"] in (True, False), target
    assert report["config"]["quick"] is True
    assert report["machine"]["cpus"] >= 1


def test_batching_benchmark_runs_and_reports_every_case() -> None:
    report = run_benchmark("batching.py", "--quick", "--json")
    for case in ("short", "long"):
        data = report["cases"][case]
        assert data["requests"] > 1, case
        for key in ("wall_s", "ideal_s", "floor_s", "ratio", "floor_ratio"):
            assert positive(data[key]), (case, key)
        assert all(positive(row["peak_bytes_per_document"]) for row in data["memory"])


def test_chunking_benchmark_reports_time_per_mb_at_every_size() -> None:
    report = run_benchmark("chunking.py", "--quick", "--json")
    sizes = report["sizes"]
    assert len(sizes) == 3
    assert sizes == sorted(sizes)
    assert set(report["cases"]) == {
        f"{script}/window {window}" for script in ("ascii", "cjk") for window in (8, 512)
    }
    for case, row in report["cases"].items():
        assert row[str(sizes[0])]["ratio"] == 1.0, case
        for size in sizes:
            assert positive(row[str(size)]["ms_per_mb"]), (case, size)
            assert positive(row[str(size)]["ratio"]), (case, size)


@pytest.mark.slow
def test_load_benchmark_runs_and_leaves_nothing_behind() -> None:
    report = run_benchmark("load.py", "--calls", "600", "--json")
    assert report["failed"] == []
    assert sum(report["outcomes"].values()) == 600
    assert report["outcomes"]["ok"] > 0
    assert positive(report["throughput_calls_per_s"])
    assert all(positive(report["latency_ms"][key]) for key in ("p50", "p95", "p99", "max"))
    assert report["server"]["requests"] >= 600
    left = report["left_over"]
    assert left["server_in_flight"] == left["sockets_after_close"] == left["tasks_after_close"] == 0
