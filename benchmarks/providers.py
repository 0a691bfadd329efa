"""rerankit's own work per call for several providers, the HTTP round trip stubbed out.

    python benchmarks/providers.py               # markdown table
    python benchmarks/providers.py --json        # the same figures as JSON

Each provider gets a client whose transport returns that vendor's canned answer at once, so
what is timed is rerankit's work around a call: input checks, planning, the provider's request
body and answer parsing, result checks, sorting and back-filling. The baseline is the
hand-written client's own work on the same 20 documents (encode, decode, sort), measured in
the same run; rounds alternate between them. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

DOCS = [f"document number {i} about passwords and accounts" for i in range(20)]
QUERY = "how do I rotate the API keys of a production deployment without downtime"


def canned_results() -> list[dict[str, Any]]:
    """A score for every document of ``DOCS``, best first, the same in every run."""
    rng = random.Random(1)
    results = [{"index": i, "relevance_score": rng.random()} for i in range(len(DOCS))]
    return sorted(results, key=lambda r: -float(r["relevance_score"]))


def stub_transport(body: bytes) -> Any:
    """A client transport answering every POST at once with ``body`` (no HTTP at all)."""
    from rerankit._http import HTTPResponse

    class Stub:
        async def post(self, *args: Any, **kwargs: Any) -> HTTPResponse:
            return HTTPResponse(200, {}, body)

        async def aclose(self) -> None:
            pass

    return Stub()


def _answers() -> dict[str, tuple[str, Any]]:
    """Model string and a canned answer in the vendor's shape, per provider."""
    results = canned_results()
    usage = {"total_tokens": 400}
    scored = [{"index": r["index"], "score": r["relevance_score"]} for r in results]
    return {
        "cohere": ("cohere/rerank-v3.5", {"id": "x", "results": results}),
        "jina_ai": (
            "jina_ai/jina-reranker-v2-base-multilingual",
            {"model": "m", "results": results, "usage": usage},
        ),
        "together_ai": (
            "together_ai/Salesforce/Llama-Rank-V1",
            {"id": "x", "model": "m", "results": results, "usage": usage},
        ),
        "hosted_vllm": ("hosted_vllm/BAAI/bge-reranker-base", {"id": "x", "results": results}),
        "voyage": ("voyage/rerank-2", {"object": "list", "data": results, "usage": usage}),
        "huggingface": ("huggingface/BAAI/bge-reranker-base", scored),
    }


async def _time_calls(call: Any, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls * 1e6


async def measure(rounds: int, calls: int) -> dict[str, dict[str, float]]:
    import msgspec
    from baseline import BaselineReply, _score

    import rerankit

    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder(BaselineReply)
    baseline_answer = msgspec.json.encode({"id": "x", "results": canned_results()})

    async def baseline() -> None:
        encoder.encode({"model": "rerank-v3.5", "query": QUERY, "documents": DOCS})
        decoder.decode(baseline_answer).results.sort(key=_score, reverse=True)

    clients: dict[str, Any] = {"baseline": baseline}
    for name, (model, answer) in _answers().items():
        settings = {"api_key": "k" * 20, "api_base": "http://stub", "requests_per_minute": 0}
        client = rerankit.AsyncClient(providers={name: {**settings, "tokens_per_minute": 0}})
        client._transport = stub_transport(msgspec.json.encode(answer))

        def call(client: Any = client, model: str = model) -> Any:
            return client.rerank(model, QUERY, DOCS)

        clients[name] = call
    for call in clients.values():
        await _time_calls(call, 200)  # warm up
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for round_number in range(rounds):
        order = list(clients) if round_number % 2 == 0 else list(reversed(clients))
        for name in order:
            samples[name].append(await _time_calls(clients[name], calls))
    base = statistics.median(samples["baseline"])
    return {
        name: {"us_per_call": statistics.median(values), "ratio": statistics.median(values) / base}
        for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (7)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (2000)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    options = parser.parse_args()
    figures = asyncio.run(measure(options.rounds, options.calls))
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print("| own work per call, HTTP stubbed | µs | ÷ baseline's own work |")
    print("|---|---:|---:|")
    for name, row in figures.items():
        print(f"| {name} | {row['us_per_call']:.1f} | {row['ratio']:.2f}x |")
    print(f"\n{options.rounds} rounds x {options.calls} calls, 20 documents per call.")


if __name__ == "__main__":
    main()
