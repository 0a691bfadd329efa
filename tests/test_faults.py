"""Fault and load tests: many calls against a fake Cohere API that fails a tenth of its requests.

The server, ``FaultInjector`` around ``CohereFake`` in ``FakeServer``'s own thread and loop,
answers with 429s (``Retry-After`` and ``retry-after-ms``), 500s and 503s, dropped connections,
truncated bodies, answers that hang past the client's timeout or are merely slow, cut-off JSON and
answers with a bad index. Every call names itself in an ``x-call-id`` header, so each one is
checked against the attempts the server saw: it returns exactly the ranking computed here from
``overlap_score`` for its own query and documents, or raises the typed error of its last fault
after all its retries. After the run no socket, task or request is left behind, and memory is
flat. A second run splits calls into concurrent batches. The cancellation tests check that
timeouts and cancelled task groups leave no request running at the server and no connection
open, and that the client still works afterwards. The tests at the end pin bugs this found.

Sized for CI: 10,000 calls at 200 in flight take about 8 s on 2 cores, the whole module about
20 s. ``benchmarks/load.py`` makes a larger run with the server in its own process.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import gc
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import anyio
import msgspec
import pytest

import rerankit
from rerankit import AsyncClient, RerankEvent, RerankResponse, RetryPolicy
from rerankit.testing import CohereFake, FakeServer, Reply, overlap_score
from rerankit.testing._faults import FAULT_ERRORS, FaultInjector, open_tcp_connections

from .conftest import API_KEY

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts sockets in /proc"),
]

MODEL = "cohere/rerank-v3.5"
CALL_HEADER = "x-call-id"

CALLS = 10_000
WARMUP = 1_000
"""Calls before the memory baseline: pools, caches and free lists fill up first."""
CONCURRENCY = 200
FAULT_RATE = 0.1
TIMEOUT = 1.0
"""The client's timeout per attempt, well above the run's worst latency without faults."""
HANG = 10.0
"""How long a hanging answer waits: the client must have given up and hung up long before."""
RETRY = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.01)
ATTEMPTS = RETRY.max_retries + 1
BATCH = 3
"""Documents per request in the batched test (calls have 3 to 12: one to four batches)."""
BATCHED_CALLS = 2_000
RUN_LIMIT = 120.0
"""The load test fails rather than hang past this many seconds."""

MAX_BLOCK_GROWTH = 5_000
"""Python memory blocks the process may gain from the warm-up to the end, measured when quiet,
besides those of pooled connections opened in between: a leak of one object per call would
be 9,000."""
BLOCKS_PER_CONNECTION = 250
"""Python memory blocks an idle pooled connection holds, client and server side (about 200)."""
MAX_HEAP_GROWTH_MB = 1.0
"""Bytes the C heap (glibc ``malloc``) may gain in use over the same span: about 100 per call."""
MAX_RSS_GROWTH_MB = 20.0
"""Resident memory the process may gain from the first sample after the warm-up to the last.
Generous: ``malloc`` keeps freed memory (its free bytes grow while its bytes in use stay flat),
so resident memory creeps up without any leak."""

ANSWERED = frozenset({"ok", "slow"})
"""What the server serves for a right answer."""
TYPED = (
    rerankit.RateLimitError,
    rerankit.InternalServerError,
    rerankit.APIConnectionError,
    rerankit.ResponseValidationError,
)

WORDS = (
    *("password", "reset", "account", "billing", "invoice", "router", "settings", "offline"),
    *("sync", "device", "token", "key", "rotation", "cluster", "cache", "index", "query"),
    *("latency", "region", "audit", "backup", "restore", "quota", "limit"),
)


class Call(NamedTuple):
    """One call of the run: its own query, documents and cut-off, from its number."""

    number: int
    query: str
    documents: list[str]
    top_n: int | None


def make_call(number: int) -> Call:
    rng = random.Random(number)
    query = " ".join(rng.sample(WORDS, rng.randint(2, 4))) + f" call{number}"
    documents = [" ".join(rng.sample(WORDS, rng.randint(1, 6))) for _ in range(rng.randint(3, 12))]
    return Call(number, query, documents, rng.choice([None, None, 1, 3, 5]))


def expected_ranking(call: Call) -> list[tuple[int, float]]:
    """(index, score) best first, ties by position, cut to ``top_n``: computed here, not by
    the fake."""
    scores = [overlap_score(call.query, text) for text in call.documents]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [(i, scores[i]) for i in order[: call.top_n]]


def wrong_ranking(call: Call, response: RerankResponse) -> str | None:
    got = [(result.index, result.relevance_score) for result in response.results]
    if got != expected_ranking(call):
        return f"wrong ranking {got}, expected {expected_ranking(call)}"
    if any(r.document != {"text": call.documents[r.index]} for r in response.results):
        return "a result carries the wrong document"
    return None


def check(
    call: Call,
    outcome: RerankResponse | Exception,
    events: list[RerankEvent],
    attempts: list[str],
) -> tuple[str | None, int]:
    """What is wrong with ``call``'s outcome, or ``None``; and how many of its attempts timed
    out on an answer that was only late (which the client cannot tell from a hang).

    ``events`` are the client's own (its hooks), ``attempts`` what the server served, in order.
    The right ranking, or a typed error: the last attempt's, after all the retries it allows
    (each batch of a split call has its own). Only retryable errors are retried. Every error
    but a timeout matches a fault the server served, and every answer a right one it served.
    """
    if not isinstance(outcome, (RerankResponse, *TYPED)):
        return f"untyped error {outcome!r} ({attempts})", 0
    requests = [event for event in events if event.kind == "request"]
    batches = len({event.batch for event in requests})
    if not requests:
        return f"no request event for the call ({attempts})", 0
    if len(attempts) > batches * ATTEMPTS or max(e.attempt for e in requests) > ATTEMPTS:
        return f"too many attempts: {attempts} at the server for {batches} request(s)", 0
    errors = [event.error for event in events if event.kind in ("retry", "error")]
    retried = [event.error for event in events if event.kind == "retry"]
    if any(isinstance(error, rerankit.ResponseValidationError) for error in retried):
        return f"retried after an invalid answer: {attempts}", 0
    served = Counter(FAULT_ERRORS.get(kind) for kind in attempts)
    explained = Counter(type(error) for error in errors if type(error) in TYPED)
    for error, count in explained.items():
        if count > served[error]:
            return f"{count} x {error.__name__} but the server served {attempts}", 0
    # A ranking is checked once its request succeeded: a bad index fails the call then.
    answers = sum(kind in ANSWERED or kind == "bad_index" for kind in attempts)
    if sum(event.kind == "response" for event in events) > answers:
        return f"more answers than the server's readable ones: {attempts}", 0
    timeouts = sum(type(error) is rerankit.APITimeoutError for error in errors)
    late = max(0, timeouts - attempts.count("hang"))
    if isinstance(outcome, RerankResponse):
        last = {event.batch: event.kind for event in events}  # each request's last event
        if set(last.values()) != {"response"}:
            return f"succeeded, but the client's requests ended {last}", late
        return wrong_ranking(call, outcome), late
    failure = next((e for e in events if e.kind == "error" and e.error is outcome), None)
    if failure is None:
        if isinstance(outcome, rerankit.ResponseValidationError) and "bad_index" in attempts:
            return None, late
        return f"raised {outcome!r}, which no request failed with ({attempts})", late
    if not isinstance(outcome, rerankit.ResponseValidationError) and failure.attempt != ATTEMPTS:
        return f"raised {outcome!r} after {failure.attempt} attempts, not {ATTEMPTS}", late
    return None, late


CURRENT_CALL: contextvars.ContextVar[int] = contextvars.ContextVar("current_call")
"""The number of the call the running task makes: the client's hooks run in its task."""


@dataclass
class Tally:
    """What the run saw: outcomes by kind, problems, late answers, resident memory samples."""

    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    late: int = 0
    rss_mb: list[float] = field(default_factory=list)
    events: dict[int, list[RerankEvent]] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    def hook(self, event: RerankEvent) -> None:
        """The client's hook: keeps each event with the call it belongs to."""
        self.events.setdefault(CURRENT_CALL.get(), []).append(event)

    def record(self, call: Call, outcome: RerankResponse | Exception, attempts: list[str]) -> None:
        self.outcomes["ok" if isinstance(outcome, RerankResponse) else type(outcome).__name__] += 1
        problem, late = check(call, outcome, self.events.pop(call.number, []), attempts)
        self.late += late
        if problem is not None:
            self.problem_count += 1
            if len(self.problems) < 20:
                self.problems.append(f"call {call.number}: {problem}")


async def run_calls(
    client: AsyncClient,
    injector: FaultInjector,
    numbers: Iterable[int],
    tally: Tally,
    *,
    sample_every: int = 0,
) -> None:
    """Make the calls ``numbers``, ``CONCURRENCY`` at a time, and check each as it ends."""
    queue = iter(numbers)

    async def worker() -> None:
        for number in queue:
            call = make_call(number)
            CURRENT_CALL.set(number)
            outcome: RerankResponse | Exception
            try:
                outcome = await client.rerank(
                    MODEL,
                    call.query,
                    call.documents,
                    top_n=call.top_n,
                    extra_headers={CALL_HEADER: str(number)},
                )
            except Exception as exc:
                outcome = exc
            tally.record(call, outcome, injector.take_attempts(str(number)))
            if sample_every and tally.done % sample_every == 0:
                tally.rss_mb.append(rss_mb())

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Memory(NamedTuple):
    blocks: int
    """Python memory blocks in use."""
    heap_mb: float | None
    """C heap bytes in use (``malloc``), in MB; ``None`` where glibc cannot tell."""
    connections: int
    """Pooled connections open to the server."""


def quiet_memory(port: int) -> Memory:
    """Memory in use once garbage is collected, and the connections open to ``port``."""
    gc.collect()
    return Memory(sys.getallocatedblocks(), heap_in_use_mb(), open_tcp_connections(port))


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_in_use_mb() -> float | None:
    """Bytes glibc's ``malloc`` has handed out and not had back, in MB (``mallinfo2``)."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return float(info.uordblks + info.hblkhd) / 2**20


async def settle(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    """Whether ``condition`` holds within ``seconds`` (sockets close and handlers end shortly
    after the calls that used them)."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


def cohere_client(
    server: FakeServer, capabilities: dict[str, int] | None = None, **options: object
) -> AsyncClient:
    settings = {"api_key": API_KEY, "api_base": server.url, "capabilities": capabilities or {}}
    return AsyncClient(providers={"cohere": settings}, **options)  # type: ignore[arg-type]


async def close_and_check(
    client: AsyncClient, server: FakeServer, injector: FaultInjector, tasks_before: set[object]
) -> None:
    """Close ``client`` after a run and check that nothing is left behind."""
    try:
        # Timed-out attempts were hung up on: the server's hanging handlers were cancelled.
        assert await settle(lambda: server.in_flight == 0), server.in_flight
        assert server.cancelled >= injector.injected["hang"] > 0
        # The client's open sockets are idle pooled connections, which the server holds too.
        assert await settle(lambda: open_tcp_connections(server.port) == server.open_connections())
        assert open_tcp_connections(server.port) <= CONCURRENCY
    finally:
        await client.aclose()
    assert await settle(lambda: open_tcp_connections(server.port) == 0)
    assert await settle(lambda: server.open_connections() == 0)
    assert open_tcp_connections(server.port, side="server") == 0
    leftover = asyncio.all_tasks() - tasks_before
    assert not leftover, leftover


def fault_server(seed: int) -> tuple[FaultInjector, FakeServer]:
    injector = FaultInjector(
        CohereFake(API_KEY), rate=FAULT_RATE, seed=seed, hang=HANG, track=CALL_HEADER
    )
    return injector, FakeServer(injector, record=False)


@pytest.mark.slow
async def test_load_with_faults_gives_right_rankings_or_typed_errors() -> None:
    injector, fake = fault_server(seed=5)
    tally = Tally()
    with fake as server, anyio.fail_after(RUN_LIMIT):
        tasks_before = asyncio.all_tasks()
        # A connection for every call in flight: a call waiting for the pool could time out
        # before the server sees it (see the pool test at the end), and the per-call check
        # wants every attempt to reach the server.
        client = cohere_client(
            server,
            timeout=TIMEOUT,
            retry=RETRY,
            max_connections=CONCURRENCY,
            hooks=[tally.hook],
        )
        try:
            started = time.perf_counter()
            await run_calls(client, injector, range(WARMUP), tally)
            warm = quiet_memory(server.port)
            await run_calls(client, injector, range(WARMUP, CALLS), tally, sample_every=1_000)
            elapsed = time.perf_counter() - started
            end = quiet_memory(server.port)
            assert await settle(lambda: server.in_flight == 0), server.in_flight
            stray = injector.take_journal()
            assert stray == {}, f"attempts reached the server after their call returned: {stray}"
        finally:
            await close_and_check(client, server, injector, tasks_before)

    heap = None if end.heap_mb is None or warm.heap_mb is None else end.heap_mb - warm.heap_mb
    blocks = end.blocks - warm.blocks
    pool_growth = max(0, end.connections - warm.connections)
    rss = [round(mb, 1) for mb in tally.rss_mb]
    report = (
        f"{CALLS} calls in {elapsed:.1f} s: {dict(tally.outcomes)}; faults "
        f"{dict(injector.injected)}; {tally.late} attempts timed out on a late answer; Python "
        f"blocks {blocks:+} ({pool_growth:+} pooled connections), C heap {heap} MB, RSS {rss} MB"
    )
    print(report)
    assert tally.problems == [], f"{tally.problem_count} problems; {report}"
    assert tally.done == CALLS
    assert server.requests == injector.requests >= CALLS
    assert set(injector.injected) == set(FAULT_ERRORS), injector.injected
    assert tally.outcomes["ok"] >= 0.9 * CALLS, report
    assert tally.late < CALLS // 100, f"too slow a machine for a {TIMEOUT} s timeout: {report}"
    assert blocks < MAX_BLOCK_GROWTH + BLOCKS_PER_CONNECTION * pool_growth, report
    assert heap is None or heap < MAX_HEAP_GROWTH_MB, report
    assert max(tally.rss_mb) - tally.rss_mb[0] < MAX_RSS_GROWTH_MB, report


@pytest.mark.slow
async def test_batched_calls_under_faults_give_right_rankings_or_typed_errors() -> None:
    """Calls split into concurrent batches: one batch failing for good cancels the others,
    which must leave no request running and no task behind; merged rankings stay right."""
    injector, fake = fault_server(seed=6)
    tally = Tally()
    with fake as server, anyio.fail_after(RUN_LIMIT):
        tasks_before = asyncio.all_tasks()
        client = cohere_client(
            server,
            capabilities={"max_documents": BATCH},
            timeout=TIMEOUT,
            retry=RETRY,
            max_connections=CONCURRENCY,
            max_batch_concurrency=CONCURRENCY,
            hooks=[tally.hook],
        )
        try:
            await run_calls(client, injector, range(BATCHED_CALLS), tally)
        finally:
            await close_and_check(client, server, injector, tasks_before)
    report = f"{dict(tally.outcomes)}; faults {dict(injector.injected)}"
    print(report)
    assert tally.problems == [], f"{tally.problem_count} problems; {report}"
    assert server.requests >= 2 * BATCHED_CALLS
    assert tally.outcomes["ok"] >= 0.8 * BATCHED_CALLS, report


# --- cancellation -----------------------------------------------------------------------------

DOCS = ["alpha beta", "beta", "gamma"]
SLOW = Reply(delay=HANG, body={"results": []})
"""An answer that comes too late for every test below (and is never sent: they hang up)."""


@pytest.fixture
def server() -> Iterable[FakeServer]:
    with FakeServer(CohereFake(API_KEY)) as running:
        yield running


async def assert_nothing_dangles(server: FakeServer, client_sockets: int = 0) -> None:
    """No request still running at the server, and only ``client_sockets`` open to it."""
    assert await settle(lambda: server.in_flight == 0), f"{server.in_flight} still in flight"
    assert await settle(lambda: open_tcp_connections(server.port) == client_sockets)
    assert await settle(lambda: server.open_connections() == client_sockets)


async def assert_usable(client: AsyncClient) -> None:
    with anyio.fail_after(5):
        response = await client.rerank(MODEL, "gamma", DOCS)
    assert [result.index for result in response.results] == [2, 0, 1]


async def test_wait_for_timeout_cancels_the_request(server: FakeServer) -> None:
    server.fail(SLOW)
    async with cohere_client(server, timeout=30) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.rerank(MODEL, "alpha", DOCS), 0.2)
        await assert_nothing_dangles(server)
        assert server.cancelled == 1
        await assert_usable(client)
    await assert_nothing_dangles(server)


async def test_fail_after_cancels_the_request(server: FakeServer) -> None:
    server.fail(SLOW)
    async with cohere_client(server, timeout=30) as client:
        with pytest.raises(TimeoutError), anyio.fail_after(0.2):
            await client.rerank(MODEL, "alpha", DOCS)
        await assert_nothing_dangles(server)
        assert server.cancelled == 1
        await assert_usable(client)
    await assert_nothing_dangles(server)


async def test_client_timeout_hangs_up_on_every_attempt(server: FakeServer) -> None:
    server.fail(SLOW, SLOW)
    retry = RetryPolicy(max_retries=1, initial_delay=0.001)
    async with cohere_client(server, timeout=0.2, retry=retry) as client:
        with pytest.raises(rerankit.APITimeoutError):
            await client.rerank(MODEL, "alpha", DOCS)
        await assert_nothing_dangles(server)
        assert (server.requests, server.cancelled) == (2, 2)
        await assert_usable(client)


async def wait_in_flight(server: FakeServer, count: int) -> None:
    for _ in range(500):
        if server.in_flight == count:
            return
        await anyio.sleep(0.01)
    raise AssertionError(f"{server.in_flight} requests in flight, expected {count}")


@pytest.mark.parametrize("how", ["cancel", "sibling fails"])
async def test_cancelled_task_group_leaves_no_request(server: FakeServer, how: str) -> None:
    server.fail(*[SLOW] * 20)
    async with cohere_client(server, timeout=30) as client:
        failure: BaseException | None = None
        try:
            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(client.rerank, MODEL, "alpha", DOCS)
                await wait_in_flight(server, 20)
                if how == "cancel":
                    group.cancel_scope.cancel()
                else:
                    raise RuntimeError("stop")
        except BaseException as exc:  # the group raises an ExceptionGroup holding it
            failure = exc
        assert (failure is None) == (how == "cancel"), failure
        await assert_nothing_dangles(server)
        assert (server.requests, server.cancelled) == (20, 20)
        await assert_usable(client)


async def test_cancel_scope_during_retry_wait_sends_no_retry(server: FakeServer) -> None:
    server.fail(Reply(status=429, body={"message": "later"}, headers={"retry-after-ms": "300"}))
    async with cohere_client(server, timeout=30) as client:
        with anyio.move_on_after(0.1) as scope:
            await client.rerank(MODEL, "alpha", DOCS)
        assert scope.cancelled_caught
        await anyio.sleep(0.4)  # past the wait the server asked for
        assert server.requests == 1
        await assert_nothing_dangles(server, client_sockets=1)  # the 429's kept-alive connection
        await assert_usable(client)


async def test_cancelled_wait_for_a_pooled_connection_frees_the_pool(server: FakeServer) -> None:
    server.fail(SLOW)
    async with cohere_client(server, timeout=30, max_connections=1) as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.rerank, MODEL, "alpha", DOCS)  # holds the only connection
            await wait_in_flight(server, 1)
            with anyio.move_on_after(0.2) as scope:
                await client.rerank(MODEL, "beta", DOCS)  # waits for the pool
            assert scope.cancelled_caught
            assert server.requests == 1
            group.cancel_scope.cancel()
        await assert_nothing_dangles(server)
        await assert_usable(client)  # the pool's one slot came back: no deadlock


# --- bugs found by these tests, fixed: they stay as regression tests ---------------------------


def raw_answer(results: list[tuple[int, float]]) -> bytes:
    body = msgspec.json.encode(
        {"id": "raw", "results": [{"index": i, "relevance_score": s} for i, s in results]}
    )
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


async def test_an_unsolicited_answer_is_never_taken_for_the_next_calls() -> None:
    """A server (or a proxy) that sends an extra, unrequested answer on an idle keep-alive
    connection must not have it read as the answer to the next call on that connection."""
    answered = anyio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for number in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                writer.write(raw_answer([(0, 0.9), (1, 0.1)]))  # the right answer, each time
                await writer.drain()
                if number == 0:
                    await asyncio.sleep(0.05)  # the connection is back in the pool by now
                    writer.write(raw_answer([(1, 0.99), (0, 0.01)]))  # nobody asked for it
                    await writer.drain()
                    answered.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = {"cohere": {"api_key": API_KEY, "api_base": f"http://127.0.0.1:{port}"}}
    try:
        with anyio.fail_after(10):
            async with AsyncClient(providers=settings, max_retries=0) as client:
                first = await client.rerank(MODEL, "a", ["a", "b"])
                assert [r.index for r in first.results] == [0, 1]
                await answered.wait()
                await anyio.sleep(0.05)
                try:
                    second = await client.rerank(MODEL, "a", ["a", "b"])
                except rerankit.APIError:
                    return  # refusing a connection in a state it cannot trust would be fine
                got = [(r.index, r.relevance_score) for r in second.results]
                assert got == [(0, 0.9), (1, 0.1)], "the second call got the unsolicited answer"
    finally:
        server.close()
        with anyio.move_on_after(5):  # from Python 3.12 it also waits for the connections
            await server.wait_closed()


async def test_calls_beyond_the_pool_wait_their_turn_and_do_not_time_out() -> None:
    """Four times as many calls in flight as connections, each answer 20 ms: a fair queue
    keeps every call near 4 x 20 ms; none may starve into the timeout while others run."""
    slow = FaultInjector(CohereFake(API_KEY), rate=1.0, mix={"slow": 1}, slow=(0.02, 0.02))
    latencies: list[float] = []
    timeouts = 0
    with FakeServer(slow, record=False) as server, anyio.fail_after(30):
        async with cohere_client(server, timeout=0.5, max_retries=0, max_connections=10) as client:
            queue = iter(range(600))

            async def worker() -> None:
                nonlocal timeouts
                for number in queue:
                    call = make_call(number)
                    started = time.perf_counter()
                    try:
                        await client.rerank(MODEL, call.query, call.documents)
                    except rerankit.APITimeoutError:
                        timeouts += 1
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(40)))
    assert timeouts == 0, f"{timeouts} of 600 calls starved into the 0.5 s timeout"
    assert max(latencies) < 0.4, f"the slowest call waited {max(latencies):.2f} s"


def test_a_client_used_from_successive_event_loops_keeps_no_old_connections(
    server: FakeServer,
) -> None:
    """``asyncio.run(client.rerank(...))`` once per job (a script, a worker, a test): each run's
    connections must be closed once its loop has shut down, not kept for the life of the
    process."""
    client = cohere_client(server)
    loops = [asyncio.new_event_loop() for _ in range(4)]

    async def use() -> None:
        await asyncio.gather(*(client.rerank(MODEL, "gamma", DOCS) for _ in range(5)))

    try:
        for loop in loops[:3]:  # as asyncio.run(use()) does, but keeping the loops to tidy up
            loop.run_until_complete(use())
            loop.run_until_complete(loop.shutdown_asyncgens())
        open_after_runs = open_tcp_connections(server.port)
        loops[3].run_until_complete(client.aclose())
        open_after_close = open_tcp_connections(server.port)
    finally:
        for loop in loops:
            loop.close()
    assert (open_after_runs, open_after_close) == (0, 0)
