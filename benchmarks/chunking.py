"""Chunking time per MB at growing input sizes: flat when chunking is linear in its input.

    python benchmarks/chunking.py               # markdown table (100 KB, 1 MB, 10 MB)
    python benchmarks/chunking.py --json        # the same figures as JSON
    python benchmarks/chunking.py --quick       # 10 KB, 100 KB, 1 MB, one round (a smoke test)

``plan_requests`` cuts one document into windows of ``--windows`` tokens (8, the smallest the
planner allows and so the most windows, and 512) with the default ``TokenEstimator``, for ASCII
text (words and spaces) and CJK text (three UTF-8 bytes a character, no spaces). A 10 MB text
of each is cut into texts of each size, which are planned in turn (so no size finds its input
in a warm cache) for at least ``--seconds`` of CPU time (small sizes many times, 10 MB a few);
the figure is the best of ``--rounds``, and its ratio to the smallest size's CPU time per MB
in the same run: ~1.0 at every size means linear. CPU time, not wall time, so other processes
on the machine do not count. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rerankit._plan import plan_requests
from rerankit._tokens import TokenEstimator
from rerankit.providers import ModelCapabilities

MB = 1_000_000
SIZES = (100_000, MB, 10 * MB)
QUICK_SIZES = (10_000, 100_000, MB)
WORDS = ("the", "of", "rerank", "query", "document", "window", "token", "chunk", "limit")


def ascii_text(size: int, rng: random.Random) -> str:
    """About ``size`` bytes of ASCII words, a newline every twelve words."""
    words = rng.choices(WORDS, k=size // 6 + 1)
    lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    return "\n".join(lines)[:size]


def cjk_text(size: int, rng: random.Random) -> str:
    """``size`` UTF-8 bytes (rounded down to whole characters) of Han characters."""
    return "".join(map(chr, rng.choices(range(0x4E00, 0xA000), k=size // 3)))


def seconds_per_mb(texts: list[str], window: int, min_seconds: float) -> float:
    """The CPU time ``plan_requests`` takes to chunk a text into ``window``-token windows, per
    MB of UTF-8 input, planning ``texts`` in turn until ``min_seconds`` of CPU time have passed
    (CPU time: other processes on the machine do not count)."""
    counter, caps = TokenEstimator(), ModelCapabilities()
    planned, elapsed, start = 0, 0.0, time.process_time()
    for text in itertools.cycle(texts):
        plan = plan_requests("query", [text], caps, counter, window=window)
        assert plan is not None
        assert plan.chunked
        planned += len(text.encode("utf-8"))
        elapsed = time.process_time() - start
        if elapsed >= min_seconds:
            break
    return elapsed / (planned / MB)


def pieces(full: str, size: int) -> list[str]:
    """``full`` cut into consecutive texts of ``size`` UTF-8 bytes (about), each a different
    part of it: planning them in turn, no size finds its input in a warm cache."""
    chars = min(len(full), round(size * len(full) / len(full.encode("utf-8"))))
    return [full[start : start + chars] for start in range(0, len(full) - chars + 1, chars)]


def run(sizes: tuple[int, ...], windows: list[int], rounds: int, seconds: float) -> dict[str, Any]:
    rng = random.Random(0)
    texts = {"ascii": ascii_text(max(sizes), rng), "cjk": cjk_text(max(sizes), rng)}
    cases: dict[str, Any] = {}
    for script, full in texts.items():
        inputs = {size: pieces(full, size) for size in sizes}
        for window in windows:
            for parts in inputs.values():  # warm up: memory mapped for every size
                seconds_per_mb(parts[:1], window, 0)
            samples: dict[int, list[float]] = {size: [] for size in sizes}
            for _ in range(rounds):
                for size, parts in inputs.items():
                    samples[size].append(seconds_per_mb(parts, window, seconds))
            best = {size: min(values) for size, values in samples.items()}
            base = best[sizes[0]]
            cases[f"{script}/window {window}"] = {
                str(size): {"ms_per_mb": value * 1000, "ratio": value / base}
                for size, value in best.items()
            }
    return {"sizes": list(sizes), "rounds": rounds, "cases": cases}


def label(size: int) -> str:
    return f"{size // MB} MB" if size >= MB else f"{size // 1000} KB"


def markdown(report: dict[str, Any]) -> str:
    sizes = report["sizes"]
    head = " | ".join(f"{label(size)}: CPU ms/MB (ratio)" for size in sizes)
    lines = [f"| chunking | {head} |", "|---" + "|---:" * len(sizes) + "|"]
    for case, row in report["cases"].items():
        cells = " | ".join(
            f"{row[str(size)]['ms_per_mb']:.1f} ({row[str(size)]['ratio']:.2f}x)" for size in sizes
        )
        lines.append(f"| {case} | {cells} |")
    lines.append(f"\nBest of {report['rounds']} rounds; ratio: ms/MB ÷ that at {label(sizes[0])}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--windows", default="8,512", help="window sizes in tokens (8,512)")
    parser.add_argument("--seconds", type=float, default=0.2, help="least time per size (0.2)")
    parser.add_argument("--quick", action="store_true", help="10 KB to 1 MB, one round")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    options = parser.parse_args()
    windows = [int(window) for window in options.windows.split(",")]
    if options.quick:
        report = run(QUICK_SIZES, windows, 1, 0.01)
    else:
        report = run(SIZES, windows, options.rounds, options.seconds)
    print(json.dumps(report, indent=2) if options.json else markdown(report))


if __name__ == "__main__":
    main()
