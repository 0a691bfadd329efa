"""Instructions per call, rerankit against the hand-written baseline, counted by Valgrind.

    python benchmarks/instructions.py            # needs valgrind; prints a markdown table
    python benchmarks/instructions.py --json     # the same figures as JSON

Timings on a shared virtual machine drift by 10-20 % from one minute to the next; instruction
counts do not. Each figure runs a client under ``valgrind --tool=cachegrind`` twice, with a
short and a long series of calls after the same warm-up, and divides the difference by the
extra calls: start-up and warm-up cancel out. Two workloads:

* ``own work``: rerankit's Cohere path with the HTTP round trip replaced by an in-process stub
  that returns a canned answer, against the baseline's own work (encode, decode, sort);
* ``loopback``: the whole call against ``fake_cohere_server.py`` in another process (not
  counted), one call in flight and 64 in flight.

Instructions are not time (cache misses and system calls are not in them), but on this kind
of workload their ratio follows the time ratio of ``run.py`` closely and is repeatable, which
makes it the tool for telling a 2 % change from noise. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from providers import DOCS, QUERY, canned_results, stub_transport  # noqa: E402

MODEL = "rerank-v3.5"
WARMUP = 200


def _canned_answer() -> bytes:
    import msgspec

    meta = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
    return msgspec.json.encode({"id": "bench", "results": canned_results(), "meta": meta})


async def _own_work(client_name: str, calls: int) -> None:
    """The client's work around one call, the HTTP round trip stubbed out."""
    import msgspec

    answer = _canned_answer()
    if client_name == "baseline":
        from baseline import BaselineReply, _score

        encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder(BaselineReply)
        for _ in range(WARMUP + calls):
            encoder.encode({"model": MODEL, "query": QUERY, "documents": DOCS})
            decoder.decode(answer).results.sort(key=_score, reverse=True)
        return

    import rerankit

    client = rerankit.AsyncClient(
        providers={"cohere": {"api_key": "k" * 20, "api_base": "http://stub"}}
    )
    client._transport = stub_transport(answer)
    for _ in range(WARMUP + calls):
        await client.rerank(f"cohere/{MODEL}", QUERY, DOCS)


async def _loopback(client_name: str, calls: int, concurrency: int, url: str) -> None:
    """Whole calls against the fake server, ``concurrency`` in flight."""
    from baseline import BaselineClient
    from run import API_KEY

    import rerankit

    client: Any
    if client_name == "baseline":
        client = BaselineClient(url, API_KEY)
        call = lambda: client.rerank(MODEL, QUERY, DOCS)  # noqa: E731
    else:
        client = rerankit.AsyncClient(providers={"cohere": {"api_key": API_KEY, "api_base": url}})
        call = lambda: client.rerank(f"cohere/{MODEL}", QUERY, DOCS)  # noqa: E731

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    for total in (WARMUP, calls):
        await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
    await client.aclose()


def _child(args: list[str]) -> None:
    workload, client_name, calls = args[0], args[1], int(args[2])
    if workload == "own":
        asyncio.run(_own_work(client_name, calls))
    else:
        asyncio.run(_loopback(client_name, calls, int(args[3]), args[4]))


_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _count(child_args: list[str], *, valgrind: bool = True) -> int:
    from run import _child_env

    tool = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command = [*(tool if valgrind else []), sys.executable, str(Path(__file__).resolve())]
    command += ["--child", *child_args]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=_child_env())
    if not valgrind:
        return 0
    found = _REFS.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def per_call(workload: str, client_name: str, calls: int, *extra: str) -> float:
    """Instructions per call: a long run minus a short one, over the extra calls."""
    _count([workload, client_name, "1", *extra], valgrind=False)  # bytecode caches written
    short = _count([workload, client_name, str(64), *extra])
    long = _count([workload, client_name, str(64 + calls), *extra])
    return (long - short) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1024, help="extra calls per figure (1024)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(options.child)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    from run import ServerProcess

    rows: dict[str, dict[str, float]] = {}
    rows["own work (HTTP stubbed)"] = {
        name: per_call("own", name, options.calls) for name in ("baseline", "rerankit")
    }
    server = ServerProcess()
    try:
        for concurrency in (1, 64):
            rows[f"loopback, {concurrency} in flight"] = {
                name: per_call("http", name, options.calls, str(concurrency), server.url)
                for name in ("baseline", "rerankit")
            }
    finally:
        server.close()
    if options.json:
        print(json.dumps(rows, indent=2))
        return
    print("| instructions per call | baseline | rerankit AsyncClient | ratio |")
    print("|---|---:|---:|---:|")
    for label, row in rows.items():
        ratio = row["rerankit"] / row["baseline"]
        print(f"| {label} | {row['baseline']:,.0f} | {row['rerankit']:,.0f} | {ratio:.2f}x |")
    python = sys.version.split()[0]
    print(f"\n{options.calls} extra calls per figure, 20 documents per call, Python {python}.")


if __name__ == "__main__":
    main()
