"""The threads behind the sync facade: every thread and child process started where rerankit
runs provider work has a clean signal mask."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import ClassVar

import anyio.to_thread
import pytest

import rerankit
from rerankit import Client, RerankResponse, RerankResult
from rerankit._types import RerankRequest
from rerankit.providers import Provider, ProviderContext
from rerankit.testing import FakeServer

from .test_sync import run_script

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
