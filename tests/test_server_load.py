"""Smoke test of ``benchmarks/server_load.py``: it runs and reports every figure. Speed is not
tested."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive(value: Any) -> bool:
    return finite(value) and value > 0


@pytest.mark.slow
def test_quick_server_load_benchmark_reports_every_figure() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "server_load.py"),
            *("--quick", "--json", "--clients", "20", "--rates", "100"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    for mode in ("back_to_back", "paced_100"):
        for path in ("direct", "baseline_proxy", "via_server"):
            row = report["modes"][mode][path]
            assert row["requests"] > 0, (mode, path)
            assert row["errors"] == 0, (mode, path)
            for key in ("requests_per_s", "p50_ms", "p90_ms", "p99_ms"):
                assert positive(row[key]), (mode, path, key)
        for pair in ("server", "baseline_proxy", "server_over_baseline"):
            for key in ("p50_ms", "p90_ms", "p50_ratio", "throughput_ratio"):
                assert finite(report["added"][mode][pair][key]), (mode, pair, key)
        assert positive(report["modes"][mode]["via_server"]["proxy_cpu_us_per_request"])
    assert report["target"]["paced"]["paced_100"]["met"] in (True, False)
    assert report["config"]["clients"] == 20
