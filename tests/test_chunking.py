"""Chunking stays linear in its input, and large CPU work (planning, BM25, merging results)
runs off the event loop, so one big request does not stall the others."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

import rerankit
from rerankit import RerankRequest, RerankResponse, RerankResult
from rerankit._cache import ENTRY_INLINE_BYTES, KEY_INLINE_CHARS, lookup, store
from rerankit._call import Call
from rerankit._http import HTTPResponse
from rerankit._input import DOCUMENTS_INLINE
from rerankit._offload import run_sized
from rerankit._plan import (
    COUNTER_INLINE_CHARS,
    RESULTS_INLINE,
    aplan_requests,
    plan_requests,
)
from rerankit._retry import RetryPolicy
from rerankit._stages import check_input, merge_and_finalise, prepare
from rerankit._targets import Targets
from rerankit._tokens import HFTokenizer, TokenEstimator
from rerankit.providers import ModelCapabilities, Provider, ProviderContext
from rerankit.providers._rest import ANSWER_INLINE_BYTES
from rerankit.providers.cohere_compatible import CohereCompatibleProvider
from rerankit.providers.local import BM25_INLINE_WORK
from rerankit.server import _app, create_app, parse_config
from rerankit.server._wire import DECODE_INLINE_BYTES
from rerankit.testing import FakeServer, ReceivedRequest, Reply

ESTIMATOR = TokenEstimator()
NO_LIMITS = ModelCapabilities()


def cjk(count: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(count))


# --- linear chunking ---------------------------------------------------------------------------


class CountingBytes(bytes):
    """UTF-8 bytes that count how many bytes their slices hold (the work of decoding them)."""

    sliced = 0

    def __getitem__(self, key: Any) -> Any:
        part = super().__getitem__(key)
        if isinstance(key, slice):
            type(self).sliced += len(part)
        return part


class CountingText(str):
    """A str whose UTF-8 encoding is ``CountingBytes``."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return CountingBytes(super().encode(encoding, errors))


def test_chunking_decodes_each_byte_of_a_long_cjk_text_once() -> None:
    text = CountingText(cjk(30_000))
    size = len(text.encode())
    CountingBytes.sliced = 0
    spans = ESTIMATOR.windows(text, 8, 1)
    assert len(spans) > 3_000
    assert 0 < CountingBytes.sliced <= size  # the old prefix decoding sliced ~n²/2 bytes

    CountingBytes.sliced = 0
    plan = plan_requests("query", [text], NO_LIMITS, ESTIMATOR, window=8)
    assert plan is not None
    assert len(plan.texts) == len(spans)
    assert CountingBytes.sliced <= size


class CountingTokenizer:
    """A ``tokenizers.Tokenizer`` that counts the characters it is asked to encode."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.chars = 0

    def encode(self, text: str, **kwargs: Any) -> Any:
        self.chars += len(text)
        return self.tokenizer.encode(text, **kwargs)

    def encode_batch(self, texts: list[str], **kwargs: Any) -> Any:
        self.chars += sum(map(len, texts))
        return self.tokenizer.encode_batch(texts, **kwargs)


def test_exact_tokenizer_chunking_encodes_a_linear_amount_of_text() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    tokenizer = tokenizers.Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")
    counting = CountingTokenizer(tokenizer)
    rng = random.Random(1)
    text = " ".join(cjk(rng.randint(1, 3), seed) for seed in range(20_000))
    plan = plan_requests("query", [text], NO_LIMITS, HFTokenizer(counting), window=8)
    assert plan is not None
    assert len(plan.texts) > 2_000
    # the text is encoded once to count, once for its token offsets, and once more in chunks
    # (8 tokens each, overlapping by 1): about 3.2 times its length, never its square
    assert counting.chars <= 3.5 * len(text)


def _old_windows(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """``TokenEstimator.windows`` as it was before it was made linear (the reference)."""
    ascii_text = text.isascii()
    data: Any = text if ascii_text else text.encode("utf-8")
    budget, back = size * 3, overlap * 3
    space, newline = (" ", "\n") if ascii_text else (b" ", b"\n")
    spans: list[tuple[int, int]] = []
    start = 0
    while start + budget < len(data):
        end = start + budget
        cut = max(data.rfind(space, start + 1, end), data.rfind(newline, start + 1, end))
        cut = cut + 1 if cut > start else end
        if not ascii_text:
            while cut > start + 1 and data[cut] & 0xC0 == 0x80:
                cut -= 1
        spans.append((start, cut))
        following = max(cut - back, start + 1)
        word = data.find(space, following, cut)
        if word == -1 or word + 1 >= cut:
            word = data.rfind(space, start + 1, following)
        start = cut if word == -1 or word + 1 >= cut else word + 1
    spans.append((start, len(data)))
    if ascii_text:
        return spans
    return [(len(data[:a].decode()), len(data[:b].decode())) for a, b in spans]


texts = st.text(st.sampled_from(["a", "b", "é", "ß", "漢", "字", "🙂", " ", "\n"]), max_size=300)


@settings(max_examples=300, deadline=None)
@given(texts, st.integers(2, 40), st.data())
def test_windows_are_those_of_the_old_algorithm(text: str, size: int, data: Any) -> None:
    overlap = data.draw(st.integers(0, size))
    assert ESTIMATOR.windows(text, size, overlap) == _old_windows(text, size, overlap)


# --- large work off the event loop -------------------------------------------------------------


class ThreadRecorder:
    """A ``TokenCounter`` (the estimator's counts) that records the threads it is called on."""

    def __init__(self) -> None:
        self.threads: set[threading.Thread] = set()

    def count(self, texts: Sequence[str]) -> list[int]:
        self.threads.add(threading.current_thread())
        return ESTIMATOR.count(texts)

    def windows(self, text: str, size: int, overlap: int) -> list[tuple[int, int]]:
        self.threads.add(threading.current_thread())
        return ESTIMATOR.windows(text, size, overlap)


@pytest.mark.anyio
async def test_planning_runs_inline_when_small_and_off_the_loop_when_large() -> None:
    loop_thread = threading.current_thread()
    small, large = ThreadRecorder(), ThreadRecorder()
    text = "word " * (COUNTER_INLINE_CHARS // 5 - 10)
    assert await aplan_requests("q", [text], NO_LIMITS, small, window=8) is not None
    assert small.threads == {loop_thread}
    text = "word " * (COUNTER_INLINE_CHARS // 5 + 10)
    assert await aplan_requests("q", [text], NO_LIMITS, large, window=8) is not None
    assert large.threads
    assert loop_thread not in large.threads


@pytest.mark.anyio
async def test_run_sized_moves_only_work_above_the_limit_to_a_thread() -> None:
    here = threading.current_thread()
    assert await run_sized(10, 10, threading.current_thread) is here
    assert await run_sized(11, 10, threading.current_thread) is not here


async def finishes_first(work: Any) -> bool:
    """Whether ``work`` (started first) completes before a task started after it, that only
    needs one turn of the event loop: false when ``work`` never lets the loop run."""
    order: list[str] = []

    async def big() -> None:
        await work
        order.append("big")

    async def small() -> None:
        await asyncio.sleep(0)
        order.append("small")

    await asyncio.gather(big(), small())
    return order[0] == "big"


@pytest.mark.anyio
async def test_bm25_scores_small_calls_inline_and_large_ones_off_the_loop() -> None:
    small = ["the quick brown fox", "a lazy dog"]
    large = [f"document {i} " + "about the quick brown fox " * 20 for i in range(100)]
    assert sum(map(len, large)) > BM25_INLINE_WORK
    async with rerankit.AsyncClient() as client:
        assert await finishes_first(client.rerank("local/bm25", "fox", small))
        assert not await finishes_first(client.rerank("local/bm25", "fox", large))


@pytest.mark.anyio
async def test_large_rankings_are_finalized_off_the_loop() -> None:
    def ranking(count: int) -> list[RerankResult]:
        return [RerankResult(index=i, relevance_score=i / count) for i in range(count)]

    rerankit.register_provider("instant", Instant)
    targets = Targets({}, timeout=None, policy=RetryPolicy(), prices=None, hooked=False)
    try:
        for count, inline in ((10, True), (RESULTS_INLINE + 1, False)):
            call = Call(model="instant/m", provider=None, query="q", documents=["d"] * count)
            target = targets.get(call.model, None)
            request = await check_input(call, target)
            job = prepare(call, target, request, False, lambda: None)  # type: ignore[arg-type,return-value]
            answer = RerankResponse(results=ranking(count))
            assert await finishes_first(merge_and_finalise(job, None, answer)) is inline
    finally:
        rerankit.unregister_provider("instant")


class Instant(Provider):
    """Answers at once, without a result: a call whose only work is rerankit's own."""

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        return RerankResponse(results=[])


@pytest.mark.anyio
async def test_many_documents_are_prepared_off_the_loop() -> None:
    rerankit.register_provider("instant", Instant)
    try:
        async with rerankit.AsyncClient() as client:
            for count, inline in ((10, True), (DOCUMENTS_INLINE + 1, False)):
                documents = [{"title": f"t{i}", "body": "b"} for i in range(count)]
                call = client.rerank("instant/m", "q", documents, rank_fields=["title", "body"])
                assert await finishes_first(call) is inline
    finally:
        rerankit.unregister_provider("instant")


@pytest.mark.anyio
async def test_cache_keys_of_large_calls_are_hashed_off_the_loop() -> None:
    rerankit.register_provider("instant", Instant)
    try:
        async with rerankit.AsyncClient(cache=rerankit.MemoryCache()) as client:
            for text, inline in (("small", True), ("x" * KEY_INLINE_CHARS, False)):
                assert await finishes_first(client.rerank("instant/m", "q", [text])) is inline
    finally:
        rerankit.unregister_provider("instant")


@pytest.mark.anyio
async def test_large_cache_entries_are_decoded_off_the_loop() -> None:
    cache = rerankit.MemoryCache()
    for count, inline in ((10, True), (ENTRY_INLINE_BYTES // 8, False)):
        ranking = [RerankResult(index=i, relevance_score=i / count) for i in range(count)]
        key = f"{count}".encode()
        await store(cache, key, RerankResponse(results=ranking))
        assert await finishes_first(lookup(cache, key)) is inline


class RecordingProvider(CohereCompatibleProvider):
    """``cohere_compatible``, recording the threads its answers are parsed on."""

    name = "recording"
    threads: ClassVar[list[threading.Thread]] = []

    def parse(
        self, answer: HTTPResponse, request: RerankRequest, ctx: ProviderContext
    ) -> RerankResponse:
        type(self).threads.append(threading.current_thread())
        return super().parse(answer, request, ctx)


def echo_answer(received: ReceivedRequest) -> Reply:
    """Cohere's shape, echoing each document four times (an answer larger than the request)."""
    documents = received.json()["documents"]
    results = [
        {"index": i, "relevance_score": 1 / (i + 1), "document": {"text": text * 4}}
        for i, text in enumerate(documents)
    ]
    return Reply(body={"results": results})


@pytest.mark.anyio
async def test_large_answers_are_parsed_off_the_loop() -> None:
    rerankit.register_provider("recording", RecordingProvider)
    RecordingProvider.threads = []
    try:
        with FakeServer(echo_answer) as server:
            async with rerankit.AsyncClient() as client:
                for text in ("small", "x" * (ANSWER_INLINE_BYTES // 3)):
                    await client.rerank("recording/m", "q", [text, "y"], api_base=server.url)
    finally:
        rerankit.unregister_provider("recording")
    small, large = RecordingProvider.threads
    assert small is threading.current_thread()
    assert large is not threading.current_thread()


@pytest.mark.anyio
async def test_server_decodes_large_bodies_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []

    def recording(body: bytes) -> Any:
        threads.append(threading.current_thread())
        return decode_v2(body)

    decode_v2 = _app.decode_v2
    monkeypatch.setattr(_app, "decode_v2", recording)
    config = parse_config('[models.bm25]\nmodel = "local/bm25"\n')
    server = TestServer(create_app(config), host="127.0.0.1")
    async with server, aiohttp.ClientSession() as http:
        for text in ("small", "x" * DECODE_INLINE_BYTES):
            body = {"model": "bm25", "query": "x", "documents": [text]}
            async with http.post(server.make_url("/v2/rerank"), json=body) as response:
                assert response.status == 200
    small, large = threads
    assert small is threading.current_thread()
    assert large is not threading.current_thread()


class Gate:
    """A ``TokenCounter`` whose first ``windows`` call waits until ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def count(self, texts: Sequence[str]) -> list[int]:
        return ESTIMATOR.count(texts)

    def windows(self, text: str, size: int, overlap: int) -> list[tuple[int, int]]:
        self.entered.set()
        self.release.wait(5)  # on the loop thread (the bug), this stalls every request
        return ESTIMATOR.windows(text, size, overlap)


@pytest.mark.anyio
async def test_server_answers_health_while_a_big_chunking_request_is_planned() -> None:
    config = parse_config('[models.bm25]\nmodel = "local/bm25"\n')
    gate = Gate()
    config.models["bm25"].options["tokenizer"] = gate
    body = {"model": "bm25", "query": "漢字", "documents": [cjk(5_000)], "max_tokens_per_doc": 8}
    order: list[str] = []
    server = TestServer(create_app(config), host="127.0.0.1")
    async with server, aiohttp.ClientSession() as http:

        async def rerank() -> Any:
            async with http.post(server.make_url("/v2/rerank"), json=body) as response:
                answer = (response.status, await response.json())
            order.append("rerank")
            return answer

        async def health() -> int:
            await asyncio.to_thread(gate.entered.wait, 10)  # the request is being chunked
            async with http.get(server.make_url("/health")) as response:
                status = response.status
            order.append("health")
            gate.release.set()
            return status

        (status, answer), health_status = await asyncio.gather(rerank(), health())
    assert order == ["health", "rerank"]
    assert (status, health_status) == (200, 200)
    assert len(answer["results"]) == 1
