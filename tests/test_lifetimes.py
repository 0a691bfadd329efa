"""Loop- and process-bound state: ``_lifetimes`` itself, and a client used across event loops,
loops closed without shutting down, forked children, interpreter exit and trio."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rerankit import AsyncClient, ConfigurationError, _lifetimes
from rerankit._lifetimes import PerLoop, PerProcess
from rerankit.testing import CohereFake, FakeServer, open_tcp_connections

from .conftest import API_KEY

ROOT = Path(__file__).resolve().parent.parent
MODEL = "cohere/rerank-v3.5"
DOCS = ["alpha beta", "beta", "gamma", "alpha", "delta", "alpha gamma"]


def cohere_client(server: FakeServer, **options: object) -> AsyncClient:
    settings: dict[str, object] = {"api_key": API_KEY, "api_base": server.url}
    settings.update(options.pop("settings", {}))  # type: ignore[call-overload]
    return AsyncClient(providers={"cohere": settings}, **options)  # type: ignore[arg-type]


def in_fork(child: Callable[[], bool]) -> int:
    """Run ``child()`` in a forked child; its exit code is 0 when it returned True."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)  # 3.12+: threads
        pid = os.fork()
    if pid == 0:
        signal.alarm(10)  # a hung child dies rather than outlive the test
        ok = False
        try:
            ok = child()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# --- PerLoop and PerProcess -----------------------------------------------------------------


def test_each_loop_gets_its_own_value_made_lazily() -> None:
    made: list[object] = []
    state: PerLoop[object] = PerLoop(lambda: made.append(object()) or made[-1])

    async def twice() -> tuple[object, object]:
        return state.get(), state.get()

    first = asyncio.run(twice())
    second = asyncio.run(twice())
    assert first[0] is first[1]
    assert second[0] is second[1]
    assert first[0] is not second[0]
    assert len(made) == 2


def test_a_loop_shutting_down_awaits_close_once_and_forgets_the_value() -> None:
    closed: list[tuple[str, bool]] = []

    async def close(value: str) -> None:
        await asyncio.sleep(0)  # really awaited on the loop
        closed.append((value, asyncio.get_running_loop().is_running()))

    state = PerLoop(lambda: "value", close=close)

    async def use() -> asyncio.AbstractEventLoop:
        state.get()
        return asyncio.get_running_loop()

    loop = asyncio.run(use())
    assert closed == [("value", True)]
    assert state.peek(loop) is None
    assert loop not in _lifetimes._records


def test_a_loop_closed_without_shutdown_is_discarded_when_another_loop_needs_state() -> None:
    discarded: list[int] = []
    counter = iter(range(100))
    state = PerLoop(lambda: next(counter), discard=discarded.append)

    async def use() -> int:
        return state.get()

    old = asyncio.new_event_loop()
    assert old.run_until_complete(use()) == 0
    old.close()  # no shutdown_asyncgens
    assert discarded == []
    assert asyncio.run(use()) == 1  # a new loop never gets the closed loop's value
    assert discarded == [0]
    assert old not in _lifetimes._records


def test_a_value_is_never_handed_to_a_loop_running_in_another_thread() -> None:
    import threading

    state: PerLoop[asyncio.AbstractEventLoop] = PerLoop(asyncio.get_running_loop)
    seen: list[bool] = []

    async def check() -> None:
        for _ in range(200):
            seen.append(state.get() is asyncio.get_running_loop())
            await asyncio.sleep(0)

    threads = [threading.Thread(target=asyncio.run, args=(check(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(seen) == 800
    assert all(seen)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_fresh_and_never_releases_what_it_inherited() -> None:
    released: list[object] = []

    async def close(value: object) -> None:
        released.append(value)

    loop_state = PerLoop(object, close=close, discard=released.append)
    process_state: PerProcess[object] = PerProcess(object)

    async def use() -> object:
        return loop_state.get()

    parent_loop = asyncio.new_event_loop()
    try:
        inherited = parent_loop.run_until_complete(use())
        inherited_process = process_state.get()

        def child() -> bool:
            fresh = asyncio.run(use())
            _lifetimes.sweep(at_exit=True)  # what interpreter exit does
            return (
                fresh is not inherited
                and released == [fresh]  # its own loop's value, closed by asyncio.run
                and process_state.get() is not inherited_process
            )

        assert in_fork(child) == 0
        assert parent_loop.run_until_complete(use()) is inherited
        assert process_state.get() is inherited_process
    finally:
        parent_loop.run_until_complete(parent_loop.shutdown_asyncgens())
        parent_loop.close()
    assert released == [inherited]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_uses_its_own_connections_and_leaves_the_parents_alone(
    server: FakeServer,
) -> None:
    client = cohere_client(server, max_retries=0)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(client.rerank(MODEL, "alpha", DOCS))

        def child() -> bool:
            asyncio.run(client.rerank(MODEL, "alpha", DOCS))
            _lifetimes.sweep(at_exit=True)  # what interpreter exit does
            return True

        assert in_fork(child) == 0
        loop.run_until_complete(client.rerank(MODEL, "alpha", DOCS))  # the pooled connection
        assert open_tcp_connections(server.port) == 1
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def test_outside_asyncio_the_error_says_how_to_call_rerankit() -> None:
    with pytest.raises(ConfigurationError, match="runs on asyncio"):
        PerLoop(object).get()


# --- a client across event loops ------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(CohereFake(API_KEY), record=False) as server:
        yield server


def test_batch_limit_works_under_successive_asyncio_runs(server: FakeServer) -> None:
    client = cohere_client(
        server, settings={"capabilities": {"max_documents": 2}}, max_batch_concurrency=1
    )

    async def three_batches() -> list[int]:
        response = await client.rerank(MODEL, "alpha", DOCS)
        assert response.provider_meta["batches"] == 3
        return [r.index for r in response.results]

    first = asyncio.run(three_batches())
    assert asyncio.run(three_batches()) == first


def test_rate_limit_works_under_successive_asyncio_runs() -> None:
    client = AsyncClient(providers={"local": {"requests_per_minute": 600}})

    async def calls(count: int) -> None:
        await asyncio.gather(*(client.rerank("local/bm25", "a", ["a", "b"]) for _ in range(count)))

    # Past a minute's budget, a caller waits holding the limiter's lock, and the next one
    # waits for the lock: in the first run, and again in the second.
    asyncio.run(calls(602))
    asyncio.run(calls(2))
    (limiter,) = client._watchers.limiters.values()
    assert limiter.waited > 0


def test_a_closed_client_is_not_kept_alive_by_its_loop(server: FakeServer) -> None:
    """A loop that runs for long (a server) and makes a client per task keeps none of them."""

    async def client_per_task() -> list[weakref.ref[AsyncClient]]:
        refs = []
        for _ in range(3):
            async with cohere_client(
                server,
                settings={"capabilities": {"max_documents": 2}, "requests_per_minute": 600},
            ) as client:
                await client.rerank(MODEL, "alpha", DOCS)  # batches, a rate limit, a session
            refs.append(weakref.ref(client))
            del client
        gc.collect()
        return refs

    assert [ref() for ref in asyncio.run(client_per_task())] == [None, None, None]


def test_loops_closed_without_shutdown_leave_no_connections_behind(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = cohere_client(server)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.ERROR):
        warnings.simplefilter("always")
        for _ in range(200):
            loop = asyncio.new_event_loop()
            loop.run_until_complete(client.rerank(MODEL, "alpha", DOCS))
            loop.close()  # without loop.shutdown_asyncgens()
        gc.collect()
        kept = sum(loop.is_closed() for loop in _lifetimes._records)
        client_side = open_tcp_connections(server.port)
        server_side = server.open_connections()
        asyncio.run(client.aclose())  # closes the last closed loop's pool too
        gc.collect()
    assert kept <= 1, f"{kept} closed loops still hold state"
    assert client_side <= 1, client_side
    assert server_side <= 1, server_side
    assert open_tcp_connections(server.port) == 0
    unclosed = [str(w.message) for w in caught if "nclosed" in str(w.message)]
    assert unclosed == []
    assert "nclosed" not in caplog.text


# --- nothing printed at exit; trio -------------------------------------------------------------


def run_script(body: str, *env: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": path, **dict(env)},
        check=False,
    )


EXIT_SCRIPTS = {
    "arerank with the key and base from the environment": """
        print(asyncio.run(rerankit.arerank(MODEL, "alpha", DOCS)).results[0].index)
    """,
    "an AsyncClient never closed": """
        client = rerankit.AsyncClient()
        async def main():
            return await client.rerank(MODEL, "alpha", DOCS)
        print(asyncio.run(main()).results[0].index)
        print(asyncio.run(main()).results[0].index)
    """,
    "loops closed without shutdown": """
        client = rerankit.AsyncClient()
        loop = asyncio.new_event_loop()
        print(loop.run_until_complete(client.rerank(MODEL, "alpha", DOCS)).results[0].index)
        loop.close()
        loop = asyncio.new_event_loop()
        print(loop.run_until_complete(client.rerank(MODEL, "alpha", DOCS)).results[0].index)
        loop.close()
    """,
    "the sync API": """
        print(rerankit.rerank(MODEL, "alpha", DOCS).results[0].index)
        print(rerankit.Client().rerank(MODEL, "alpha", DOCS).results[0].index)
    """,
}


@pytest.mark.slow
@pytest.mark.parametrize("body", EXIT_SCRIPTS.values(), ids=EXIT_SCRIPTS.keys())
def test_nothing_is_printed_at_exit(body: str) -> None:
    result = run_script(
        textwrap.dedent(f"""
        import asyncio, os
        import rerankit
        from rerankit.testing import CohereFake, FakeServer
        MODEL, DOCS = "cohere/rerank-v3.5", ["beta", "alpha"]
        server = FakeServer(CohereFake("{API_KEY}"))
        server.start()
        os.environ["COHERE_API_KEY"], os.environ["COHERE_API_BASE"] = "{API_KEY}", server.url
        """)
        + textwrap.dedent(body),
        ("PYTHONWARNINGS", "default"),
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"1"}
    assert result.stderr == ""


@pytest.mark.slow
def test_under_trio_a_clear_error_and_the_sync_api_in_a_thread_works() -> None:
    pytest.importorskip("trio")
    result = run_script(
        """
        import trio
        import rerankit

        async def main():
            client = rerankit.AsyncClient()
            for call in (
                lambda: client.rerank("local/bm25", "alpha", ["beta", "alpha"]),
                lambda: client.rerank("cohere/rerank-v3.5", "alpha", ["beta"], api_key="k"),
                lambda: rerankit.arerank("local/bm25", "alpha", ["beta", "alpha"]),
                lambda: client.rerank_many("local/bm25", [("alpha", ["beta", "alpha"])]),
                lambda: rerankit.arerank_many("local/bm25", [("alpha", ["beta", "alpha"])]),
            ):
                try:
                    await call()
                except rerankit.ConfigurationError as exc:
                    assert "runs on asyncio" in str(exc) and "trio" in str(exc), exc
                else:
                    raise AssertionError("no error under trio")
            response = await trio.to_thread.run_sync(
                lambda: rerankit.rerank("local/bm25", "alpha", ["beta", "alpha"])
            )
            print(response.results[0].index)

        trio.run(main)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"


# --- process state of the sync facade and the local models ----------------------------------


def test_a_forked_child_loads_a_model_a_parent_thread_is_still_loading() -> None:
    from rerankit.providers import _onnx

    loading, release = threading.Event(), threading.Event()

    def slow_load() -> str:
        loading.set()
        release.wait(10)
        return "parent's"

    parent = threading.Thread(target=_onnx.cached, args=("fork-model", slow_load))
    parent.start()
    try:
        assert loading.wait(10)
        # The parent's thread holds the model's loading lock: the child must not wait on it.
        assert in_fork(lambda: _onnx.cached("fork-model", lambda: "child's") == "child's") == 0
    finally:
        release.set()
        parent.join(10)
    assert _onnx.cached_or_none("fork-model") == "parent's"
    _onnx.clear_cache()


def test_a_forked_child_gets_its_own_default_sync_client_and_portal() -> None:
    from rerankit._sync import _client as sync_client
    from rerankit._sync import _portal

    parent_client, parent_portal = sync_client.default_client(), _portal.get_portal()

    def child() -> bool:
        client, portal = sync_client.default_client(), _portal.get_portal()
        fresh = client is not parent_client and portal is not parent_portal
        return fresh and sync_client.default_client() is client and portal.running

    assert in_fork(child) == 0
    assert sync_client.default_client() is parent_client


def test_threads_first_using_a_client_at_once_share_one_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rerankit import _http

    class SlowToMake(_http.Transport):
        def __init__(self, **kwargs: Any) -> None:
            time.sleep(0.05)  # widens the window in which a second thread could make another
            super().__init__(**kwargs)

    monkeypatch.setattr(_http, "Transport", SlowToMake)
    client = AsyncClient()
    start = threading.Barrier(2)
    made: list[object] = []

    def first_use() -> None:
        start.wait()
        made.append(client._get_transport())

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 2
    assert made[0] is made[1]
