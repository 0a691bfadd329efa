"""One model over every query's candidates, through ``AsyncClient.rerank_many``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from rerankit._cache import ResponseCache
from rerankit._errors import RerankitError
from rerankit._events import RerankEvent
from rerankit._many import RerankJob
from rerankit._types import RerankResponse
from rerankit.eval._store import latency_key, load_latency, save_latency

__all__ = ["ModelRun", "run_model"]

_TAG = "rerankit.eval.query"


class ModelRun(msgspec.Struct, kw_only=True):
    """What one model did: each query's ranking (best first), and per answered query its
    latency (seconds; ``None`` if unknown) and cost (USD; ``None`` if unknown)."""

    rankings: dict[str, list[str]]
    latencies: list[float | None]
    costs: list[float | None]
    documents: int
    failed: int = 0
    error: str | None = None
    from_cache: int = 0


class _Timer:
    """A hook timing each query from its first request to its last response (after any
    rate-limit wait, so a quota does not count as latency)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.started: dict[int, float] = {}
        self.ended: dict[int, float] = {}

    def __call__(self, event: RerankEvent) -> None:
        position = (event.metadata or {}).get(_TAG)
        if not isinstance(position, int):
            return
        if event.kind == "request":
            self.started.setdefault(position, self.clock())
        elif event.kind == "response":
            self.ended[position] = self.clock()

    def latencies(self) -> list[tuple[int, float]]:
        """``(position, seconds)`` of every query that got a response.

        A query split into several requests may be counted before its last one answers, when
        the run is interrupted; its answer is not cached then, so its next run measures again.
        """
        measured = [(position, self.latency(position)) for position in self.ended]
        return [(position, seconds) for position, seconds in measured if seconds is not None]

    def latency(self, position: int) -> float | None:
        if position not in self.started or position not in self.ended:
            return None
        return self.ended[position] - self.started[position]


async def run_model(
    model: str,
    queries: Mapping[str, str],
    candidates: Mapping[str, list[str]],
    corpus: Mapping[str, str],
    *,
    cache: ResponseCache | None,
    providers: Mapping[str, Any] | None = None,
    concurrency: int = 8,
    on_progress: Callable[[int, int], object] | None = None,
) -> ModelRun:
    """Rerank each query's candidates with ``model``; queries without candidates are skipped
    (their ranking stays empty)."""
    from anyio import to_thread

    from rerankit._client import AsyncClient

    qids = [qid for qid in queries if candidates.get(qid)]
    texts = [[corpus[docid] for docid in candidates[qid]] for qid in qids]
    jobs = [
        RerankJob(query=queries[qid], documents=list(documents), metadata={_TAG: position})
        for position, (qid, documents) in enumerate(zip(qids, texts, strict=True))
    ]
    keys = await to_thread.run_sync(_latency_keys, model, [queries[qid] for qid in qids], texts)
    timer = _Timer()
    try:
        async with AsyncClient(providers=providers, cache=cache, hooks=[timer]) as client:
            answers = await client.rerank_many(
                model,
                jobs,
                concurrency=concurrency,
                return_documents=False,
                on_progress=on_progress,
            )
    finally:  # interrupted or not, keep the latencies of the answers the cache now holds
        if cache is not None:
            for position, seconds in timer.latencies():
                await save_latency(cache, keys[position], seconds)
    result = ModelRun(rankings={qid: [] for qid in queries}, latencies=[], costs=[], documents=0)
    for position, (qid, documents, answer) in enumerate(zip(qids, texts, answers, strict=True)):
        if isinstance(answer, RerankitError):
            result.failed += 1
            result.error = result.error or str(answer)
            continue
        result.rankings[qid] = _ranking(answer, candidates[qid])
        result.costs.append(answer.cost)
        result.documents += len(documents)
        latency = timer.latency(position)
        if latency is None and cache is not None:  # answered from the cache: no request
            result.from_cache += 1
            latency = await load_latency(cache, keys[position])
        result.latencies.append(latency)
    return result


def _latency_keys(model: str, queries: list[str], texts: list[list[str]]) -> list[bytes]:
    """Each query's latency key (hashing every candidate text: a worker thread's job)."""
    return [latency_key(model, query, docs) for query, docs in zip(queries, texts, strict=True)]


def _ranking(response: RerankResponse, ids: list[str]) -> list[str]:
    """Document ids in the response's order (ties broken by first-stage order, as rerankit
    sorts equal scores by ascending index)."""
    return [ids[result.index] for result in response.results]
