"""The threads behind the sync facade: worker threads are reused across calls, and every thread
and child process started where rerankit runs provider work has a clean signal mask."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import anyio.to_thread
import pytest

import rerankit
from rerankit import Client, RerankResponse, RerankResult, SQLiteCache
from rerankit._types import RerankRequest
from rerankit.providers import Provider, ProviderContext
from rerankit.testing import FakeServer

from .conftest import API_KEY
from .support import DOCS_5 as DOCS
from .support import QUERY
from .test_sync import MODEL, PRELUDE, run_script

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "pthread_sigmask"), reason="signal masks are POSIX-only"
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
"""A child process that lives until a signal ends it."""


def blocked_signals() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def start_sleeper() -> tuple[str, set[int], subprocess.Popen[bytes]]:
    """Start a child the way a credential helper is started; note this thread's mask."""
    where = threading.current_thread().name
    return where, blocked_signals(), subprocess.Popen(SLEEPER)


class Spawner(Provider):
    """Starts a child process from each place rerankit runs provider code."""

    name = "spawner"
    api_key_env = ()
    started: ClassVar[list[tuple[str, set[int], subprocess.Popen[bytes]]]] = []

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        started = type(self).started
        started.append(start_sleeper())  # inline, on the event loop's thread
        started.append(await anyio.to_thread.run_sync(start_sleeper))
        started.append(await asyncio.get_running_loop().run_in_executor(None, start_sleeper))
        return RerankResponse(results=[RerankResult(index=0, relevance_score=1.0)])


@pytest.fixture
def spawner() -> Iterator[type[Spawner]]:
    rerankit.register_provider("spawner", Spawner)
    Spawner.started = []
    try:
        yield Spawner
    finally:
        rerankit.unregister_provider("spawner")
        for _, _, child in Spawner.started:
            if child.poll() is None:
                child.kill()
                child.wait()


@pytest.mark.slow
def test_children_started_under_the_sync_facade_die_on_sigterm(spawner: type[Spawner]) -> None:
    with Client() as client:
        client.rerank("spawner/m", "q", ["a"])
    assert len(spawner.started) == 3
    for where, _, child in spawner.started:
        child.send_signal(signal.SIGTERM)
        try:
            code = child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        assert code == -signal.SIGTERM, f"a child started in {where} ignored SIGTERM"
    for where, mask, _ in spawner.started:
        assert mask == set(), f"{where} blocks {mask}"


@pytest.mark.slow
def test_threads_rerankit_starts_do_not_inherit_the_callers_mask(cohere_server: FakeServer) -> None:
    result = run_script(
        """
        import signal, threading
        import anyio.to_thread


        def mask():
            return sorted(signal.pthread_sigmask(signal.SIG_BLOCK, []))


        class Masks(rerankit.providers.Provider):
            api_key_env = ()

            async def rerank(self, request, ctx):
                print("loop thread", mask(), "worker", await anyio.to_thread.run_sync(mask))
                return rerankit.RerankResponse(results=[])


        rerankit.register_provider("masks", Masks)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])  # the first caller's mask
        rerankit.rerank("masks/m", "q", ["a"])
        """,
        cohere_server,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "loop thread [] worker []\n"


# --- worker threads -----------------------------------------------------------------------------


class ThreadRecorder:
    """A ``SQLiteCache`` clock that records which threads the cache's work ran in."""

    def __init__(self) -> None:
        self.threads: set[threading.Thread] = set()
        self.masks: set[frozenset[int]] = set()

    def __call__(self) -> float:
        self.threads.add(threading.current_thread())
        self.masks.add(frozenset(blocked_signals()))
        return time.time()


def test_sync_calls_reuse_worker_threads(cohere_server: FakeServer, tmp_path: Path) -> None:
    recorder = ThreadRecorder()
    cache = SQLiteCache(tmp_path / "cache.sqlite", ttl=3600, clock=recorder)
    settings = {"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}}
    try:
        with Client(providers=settings, cache=cache) as client:
            for i in range(60):
                client.rerank(MODEL, QUERY, DOCS, top_n=1 + i % 3)
    finally:
        cache.close()
    assert len(cohere_server.received) == 3  # the rest were answered by the cache
    assert recorder.threads  # the cache's work ran in worker threads, not on the loop
    assert threading.current_thread() not in recorder.threads
    assert len(recorder.threads) <= 2, f"{len(recorder.threads)} threads for 60 calls"
    assert all(thread.is_alive() for thread in recorder.threads)  # kept for the next call
    assert recorder.masks == {frozenset()}


EXIT_CHECK = """\
import atexit, threading, warnings

warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)  # 3.12+: threads + fork


def anyio_workers():
    return [t for t in threading.enumerate() if t.name == "AnyIO worker thread"]


def workers_ended(workers):
    # registered before rerankit's own exit hook, so it runs after it
    for worker in workers:
        worker.join(5)
    print(f"still running after exit: {sum(t.is_alive() for t in workers)}", flush=True)


workers = []
atexit.register(workers_ended, workers)
"""


@pytest.mark.slow
def test_worker_threads_end_at_exit_and_a_forked_child_starts_its_own(
    cohere_server: FakeServer, tmp_path: Path
) -> None:
    result = run_script(
        f"""
        cache = rerankit.SQLiteCache({str(tmp_path / "cache.sqlite")!r})
        client = new_client(cache=cache)
        for _ in range(20):
            check(client.rerank(MODEL, QUERY, DOCS))
        pid = os.fork()
        if pid == 0:
            try:
                for _ in range(20):
                    check(client.rerank(MODEL, QUERY, DOCS))
                print(f"child done, workers: {{len(anyio_workers())}}", flush=True)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        check(client.rerank(MODEL, QUERY, DOCS))
        workers.extend(anyio_workers())
        print(f"parent done, workers: {{len(workers)}}", flush=True)
        """,
        cohere_server,
        prelude=EXIT_CHECK + PRELUDE,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "child done, workers: 1",
        "parent done, workers: 1",
        "still running after exit: 0",
    ]
    assert result.stderr == ""
    assert len(cohere_server.received) == 1  # every later call, the child's too, hit the cache
