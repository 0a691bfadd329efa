"""The generated sync facade: threads, a caller's running loop, pooling, exit, fork, Ctrl-C.

Behaviour that only shows in a whole process (interpreter exit, fork, SIGINT, a call made on
rerankit's own loop thread, which would deadlock if unguarded) runs in a bounded subprocess.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import rerankit
from rerankit import AsyncClient, Client, MemoryCache, RerankResponse
from rerankit.testing import FakeServer, Reply, overlap_score

from .conftest import API_KEY
from .support import DOCS_5 as DOCS
from .support import FAST_RETRY, QUERY, expected_order

ROOT = Path(__file__).resolve().parent.parent
MODEL = "cohere/rerank-v3.5"
SUBPROCESS_TIMEOUT = 30.0
"""A generous bound on any one subprocess; they normally take well under a second."""


def assert_ranked(response: RerankResponse, query: str, docs: list[str]) -> None:
    order = expected_order(query, docs)
    assert [r.index for r in response.results] == order
    assert [r.document for r in response.results] == [{"text": docs[i]} for i in order]
    assert [r.relevance_score for r in response.results] == [
        overlap_score(query, docs[i]) for i in order
    ]


@pytest.fixture
def sync_client(cohere_server: FakeServer) -> Iterator[Client]:
    with Client(
        providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}},
        retry=FAST_RETRY,
        timeout=5,
    ) as client:
        yield client


# --- threads, a running loop in the caller, the connection pool --------------------------------


def one_case(thread: int, call: int) -> tuple[str, list[str]]:
    """A query and documents unique to one call, ranked in an order that differs by call."""
    t, c = f"thread{thread}", f"call{call}"
    docs = [f"{t} {c} shared", f"{c} shared", f"{t}", "unrelated words"]
    shift = (thread + call) % len(docs)
    return f"{t} {c} shared", docs[shift:] + docs[:shift]


def test_many_threads_share_one_client(sync_client: Client, cohere_server: FakeServer) -> None:
    threads, calls = 16, 6
    start = threading.Barrier(threads)

    def work(thread: int) -> list[tuple[str, list[str], RerankResponse]]:
        start.wait(10)
        done: list[tuple[str, list[str], RerankResponse]] = []
        for call in range(calls):
            query, docs = one_case(thread, call)
            done.append((query, docs, sync_client.rerank(MODEL, query, docs)))
        return done

    with ThreadPoolExecutor(threads) as pool:
        per_thread = list(pool.map(work, range(threads)))

    for done in per_thread:
        for query, docs, response in done:
            assert_ranked(response, query, docs)
    assert len(cohere_server.received) == threads * calls
    assert {r.json()["query"] for r in cohere_server.received} == {
        one_case(t, c)[0] for t in range(threads) for c in range(calls)
    }


def test_works_inside_a_running_event_loop(sync_client: Client, cohere_server: FakeServer) -> None:
    async def notebook_cell() -> list[RerankResponse]:
        asyncio.get_running_loop()  # this thread runs a loop, as a notebook cell's does
        responses = [sync_client.rerank(MODEL, QUERY, DOCS)]
        with Client(
            providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}}
        ) as inner:
            responses.append(inner.rerank(MODEL, QUERY, DOCS))
        responses.append(
            rerankit.rerank(MODEL, QUERY, DOCS, api_key=API_KEY, api_base=cohere_server.url)
        )
        return responses

    for response in asyncio.run(notebook_cell()):
        assert_ranked(response, QUERY, DOCS)
    assert len(cohere_server.received) == 3


def test_calls_reuse_one_connection_from_any_thread(
    sync_client: Client, cohere_server: FakeServer
) -> None:
    for _ in range(3):
        assert_ranked(sync_client.rerank(MODEL, QUERY, DOCS), QUERY, DOCS)
    for _ in range(2):  # each from a new thread: the pool belongs to the client, not a thread
        with ThreadPoolExecutor(1) as pool:
            response = pool.submit(sync_client.rerank, MODEL, QUERY, DOCS).result(10)
        assert_ranked(response, QUERY, DOCS)
    assert len(cohere_server.received) == 5
    assert len(cohere_server.connections) == 1


def test_a_dropped_client_closes_its_pool_quietly(
    cohere_server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}})
    assert_ranked(client.rerank(MODEL, QUERY, DOCS), QUERY, DOCS)
    inner = weakref.ref(client._async)

    def released() -> bool:
        gc.collect()
        return inner() is None

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client  # never closed: without a finalizer its open session is collected right here
        assert wait_for(released, 5)  # closed on the loop, then released
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert "Unclosed" not in caplog.text


# --- errors -------------------------------------------------------------------------------------

BAD_CALLS: dict[str, tuple[str, dict[str, Any], type[Exception]]] = {
    "wrong key": (MODEL, {"api_key": "wrong-key"}, rerankit.AuthenticationError),
    "no key": (MODEL, {}, rerankit.ConfigurationError),
    "unknown provider": ("cohre/rerank-v3.5", {"api_key": API_KEY}, rerankit.UnknownProviderError),
    "unsupported parameter": (
        MODEL,
        {"api_key": API_KEY, "instruction": "be strict"},
        rerankit.UnsupportedParameterError,
    ),
    "unknown argument": (
        MODEL,
        {"api_key": API_KEY, "temperature": 0.1},
        rerankit.ConfigurationError,
    ),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_sync_raises_what_async_raises(case: str, cohere_server: FakeServer) -> None:
    model, kwargs, expected = BAD_CALLS[case]
    kwargs = {**kwargs, "api_base": cohere_server.url, "max_retries": 0}

    async def async_call() -> BaseException:
        async with AsyncClient() as client:
            with pytest.raises(expected) as info:
                await client.rerank(model, QUERY, DOCS, **kwargs)
        return info.value

    async_error = asyncio.run(async_call())
    with Client() as client, pytest.raises(expected) as info:
        client.rerank(model, QUERY, DOCS, **kwargs)
    assert type(info.value) is type(async_error)
    assert str(info.value) == str(async_error)
    if isinstance(async_error, rerankit.APIStatusError):
        assert isinstance(info.value, rerankit.APIStatusError)
        assert info.value.status_code == async_error.status_code == 401


def test_closed_client_raises_like_the_async_one(cohere_server: FakeServer) -> None:
    client = Client(providers={"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}})
    client.rerank(MODEL, QUERY, DOCS)
    client.close()
    client.close()
    with pytest.raises(rerankit.ConfigurationError, match="closed"):
        client.rerank(MODEL, QUERY, DOCS)


# --- the generated facade matches the async client ----------------------------------------------


SYNC_NAMES = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
"""``AsyncClient`` members whose ``Client`` counterpart has another name."""


def public_names(client: object, *protocol: str) -> set[str]:
    """Public names on ``client`` (its class's and its own), plus the given protocol methods."""
    return {name for name in dir(client) if not name.startswith("_")} | set(protocol)


def assert_same_parameters(sync: Callable[..., Any], asynchronous: Callable[..., Any]) -> None:
    sync_sig, async_sig = inspect.signature(sync), inspect.signature(asynchronous)
    assert list(sync_sig.parameters.values()) == list(async_sig.parameters.values()), sync
    returns = async_sig.return_annotation
    assert sync_sig.return_annotation == returns.replace("AsyncClient", "Client"), sync


def assert_adapted_doc(sync: Callable[..., Any], asynchronous: Callable[..., Any]) -> None:
    async_doc, sync_doc = inspect.getdoc(asynchronous), inspect.getdoc(sync)
    assert bool(sync_doc) == bool(async_doc), sync
    if not sync_doc or not async_doc:
        return
    assert sync_doc.split()[:3] == async_doc.split()[:3], sync  # the same text, adapted
    for word in ("await", "AsyncClient", "aclose", "async ", "running loop", "session"):
        assert word not in sync_doc, (sync, word)


def assert_same_member(sync: Client, asynchronous: AsyncClient, name: str) -> None:
    """``Client``'s counterpart of ``AsyncClient.<name>`` is the same kind, signature and doc."""
    sync_name = SYNC_NAMES.get(name, name)
    async_member = inspect.getattr_static(AsyncClient, name, None)
    sync_member = inspect.getattr_static(Client, sync_name, None)
    if async_member is None:  # an attribute of the instance
        assert sync_member is None
        assert getattr(sync, sync_name) == getattr(asynchronous, name)
    elif isinstance(async_member, property):
        assert isinstance(sync_member, property), name
        assert (sync_member.fset is None) == (async_member.fset is None), name
        assert_same_parameters(sync_member.fget, async_member.fget)  # type: ignore[arg-type]
        assert_adapted_doc(sync_member.fget, async_member.fget)  # type: ignore[arg-type]
        assert getattr(sync, sync_name) == getattr(asynchronous, name)
    else:
        assert callable(async_member), name
        assert callable(sync_member), name
        assert not inspect.iscoroutinefunction(sync_member), name
        assert_same_parameters(sync_member, async_member)
        assert_adapted_doc(sync_member, async_member)


def test_client_has_the_async_clients_public_surface() -> None:
    options: dict[str, Any] = {"cache": MemoryCache(), "timeout": 7, "max_retries": 1}
    asynchronous = AsyncClient(**options)
    with Client(**options) as sync:
        async_names = public_names(asynchronous, "__aenter__", "__aexit__")
        assert async_names >= {"rerank", "rerank_many", "aclose", "cache"}
        assert public_names(sync, "__enter__", "__exit__") == {
            SYNC_NAMES.get(name, name) for name in async_names
        }
        for name in sorted(async_names):
            assert_same_member(sync, asynchronous, name)
    asyncio.run(asynchronous.aclose())
    assert Client.rerank.__doc__ == AsyncClient.rerank.__doc__


def test_sync_client_cache_counts_hits_and_misses(cohere_server: FakeServer) -> None:
    cache = MemoryCache()
    settings = {"cohere": {"api_key": API_KEY, "api_base": cohere_server.url}}
    with Client(providers=settings, cache=cache) as client:
        for _ in range(2):
            assert_ranked(client.rerank(MODEL, QUERY, DOCS), QUERY, DOCS)
        assert client.cache is cache
        assert (client.cache.stats.hits, client.cache.stats.misses) == (1, 1)
    assert len(cohere_server.received) == 1
    with Client() as client:
        assert client.cache is None


def test_constructor_and_module_function_match() -> None:
    init = inspect.signature(Client.__init__).parameters
    async_init = inspect.signature(AsyncClient.__init__).parameters
    assert list(init.values()) == [p for name, p in async_init.items() if name != "session"]
    assert inspect.signature(Client.__init__).return_annotation == "None"
    assert_same_parameters(rerankit.rerank, rerankit.arerank)
    assert_adapted_doc(rerankit.rerank, rerankit.arerank)
    assert "Client.rerank" in (rerankit.rerank.__doc__ or "")
    assert_adapted_doc(Client, AsyncClient)
    assert inspect.signature(Client.__enter__).return_annotation == "Client"


@pytest.mark.slow
def test_generated_file_is_up_to_date() -> None:
    pytest.importorskip("ruff")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_sync.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- whole-process behaviour, in bounded subprocesses ------------------------------------------

PRELUDE = """\
import os, sys, time
import rerankit
from rerankit.testing import overlap_score

URL, KEY = sys.argv[1], sys.argv[2]
MODEL = "cohere/rerank-v3.5"
QUERY = "reset password settings"
DOCS = ["Invoices are sent monthly.", "Open settings to reset your password.", "Reset it."]
ORDER = sorted(range(len(DOCS)), key=lambda i: (-overlap_score(QUERY, DOCS[i]), i))


def new_client(**options):
    return rerankit.Client(providers={"cohere": {"api_key": KEY, "api_base": URL}}, **options)


def check(response):
    assert [r.index for r in response.results] == ORDER, response
"""


def python(*flags: str) -> list[str]:
    return [sys.executable, *flags]


def script_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def run_script(
    body: str,
    server: FakeServer,
    *flags: str,
    prelude: str = PRELUDE,
    timeout: float = SUBPROCESS_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    code = prelude + textwrap.dedent(body)
    return subprocess.run(
        [*python(*flags), "-c", code, server.url, API_KEY],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=script_env(),
        check=False,
    )


@pytest.mark.slow
def test_interpreter_exits_promptly_and_quietly_without_close(cohere_server: FakeServer) -> None:
    started = time.monotonic()
    result = run_script(
        """
        client = new_client()
        check(client.rerank(MODEL, QUERY, DOCS))
        check(rerankit.rerank(MODEL, QUERY, DOCS, api_key=KEY, api_base=URL))

        def forgotten():
            check(new_client().rerank(MODEL, QUERY, DOCS))  # dropped, never closed

        forgotten()
        check(client.rerank(MODEL, QUERY, DOCS))
        print("done")
        """,
        cohere_server,
        "-W",
        "always::ResourceWarning",
        timeout=15,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert result.stderr == ""
    assert elapsed < 10
    assert len(cohere_server.received) == 4


FORK_PRELUDE = (
    PRELUDE
    + """
import gc, signal, warnings
warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)  # 3.12+: threads + fork


def fork(child):
    \"\"\"Run ``child()`` in a forked child; return its exit code (bounded: it cannot hang).\"\"\"
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)  # a hung child dies rather than outlive the test
        child()
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.01)
"""
)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_a_fresh_loop_and_the_parent_keeps_working(
    cohere_server: FakeServer,
) -> None:
    result = run_script(
        """
        client = new_client()
        check(client.rerank(MODEL, QUERY, DOCS))
        check(rerankit.rerank(MODEL, QUERY, DOCS, api_key=KEY, api_base=URL))


        def use_everything():
            status = 1
            try:
                check(client.rerank(MODEL, QUERY, DOCS))  # made before the fork
                check(rerankit.rerank(MODEL, QUERY, DOCS, api_key=KEY, api_base=URL))
                with new_client() as fresh:
                    check(fresh.rerank(MODEL, QUERY, DOCS))
                status = 0
            except BaseException as exc:
                print(f"child failed: {exc!r}", file=sys.stderr, flush=True)
            finally:
                os._exit(status)


        code = fork(use_everything)
        assert code == 0, f"the child exited with {code}"
        check(client.rerank(MODEL, QUERY, DOCS))
        check(rerankit.rerank(MODEL, QUERY, DOCS, api_key=KEY, api_base=URL))
        print("done")
        """,
        cohere_server,
        prelude=FORK_PRELUDE,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert len(cohere_server.received) == 7


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_dropping_inherited_clients_leaves_the_parent_pool_alone(
    cohere_server: FakeServer,
) -> None:
    result = run_script(
        """
        client = new_client(timeout=3, max_retries=0)  # a broken pooled connection fails fast
        check(client.rerank(MODEL, QUERY, DOCS))


        def drop_and_exit():
            global client
            del client
            gc.collect()
            sys.exit(0)  # a normal exit: atexit handlers and interpreter teardown run


        code = fork(drop_and_exit)
        assert code == 0, f"the child exited with {code}"
        check(client.rerank(MODEL, QUERY, DOCS))
        print("done")
        """,
        cohere_server,
        prelude=FORK_PRELUDE,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert len(cohere_server.received) == 2
    assert len(cohere_server.connections) == 1


def read_lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with stream:
            for line in stream:
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX-only")
def test_ctrl_c_cancels_the_request_in_flight(cohere_server: FakeServer, tmp_path: Path) -> None:
    cohere_server.fail(Reply(delay=30))
    code = PRELUDE + textwrap.dedent(
        """
        client = new_client(timeout=60, max_retries=0)
        print("calling")
        try:
            client.rerank(MODEL, QUERY, DOCS)
        except KeyboardInterrupt:
            print("interrupted")
            sys.stdin.readline()  # the test checks the server side while this process lives
            check(client.rerank(MODEL, QUERY, DOCS))  # the loop and the client still work
            print("still works")
            raise
        print("not interrupted")
        """
    )
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr_file:
        proc = subprocess.Popen(
            [*python(), "-c", code, cohere_server.url, API_KEY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            env=script_env(),
        )
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        lines = read_lines(proc.stdout)
        assert lines.get(timeout=SUBPROCESS_TIMEOUT) == "calling\n"
        assert wait_for(lambda: len(cohere_server.received) == 1, SUBPROCESS_TIMEOUT)
        proc.send_signal(signal.SIGINT)
        assert lines.get(timeout=3) == "interrupted\n"  # at once, not after the 30 s reply
        assert wait_for(lambda: cohere_server.cancelled == 1, 3)  # and before exit closes it
        proc.stdin.write("go on\n")
        proc.stdin.close()
        assert lines.get(timeout=10) == "still works\n"
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
    stderr = stderr_path.read_text()
    assert proc.returncode != 0
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr
    assert len(cohere_server.received) == 2


@pytest.mark.slow
def test_sync_call_on_rerankit_loop_thread_raises(cohere_server: FakeServer) -> None:
    result = run_script(
        """
        from rerankit import RerankResponse, RerankResult
        from rerankit.providers import Provider


        class CallsSyncInside(Provider):
            name = "calls-sync-inside"

            async def rerank(self, request, ctx):
                # would wait on the very loop that runs it, forever, without the guard
                rerankit.rerank(MODEL, QUERY, DOCS, api_key=KEY, api_base=URL)
                scored = [RerankResult(index=i, relevance_score=0.5) for i in range(2)]
                return RerankResponse(results=scored)


        rerankit.register_provider("calls-sync-inside", CallsSyncInside)
        try:
            with rerankit.Client() as client:
                client.rerank("calls-sync-inside/m", "q", ["a", "b"])
        except rerankit.RerankitError as exc:
            print(type(exc).__name__, exc)
        else:
            sys.exit("no error")
        finally:
            rerankit.unregister_provider("calls-sync-inside")
        check(rerankit.rerank(MODEL, QUERY, DOCS, api_key=KEY, api_base=URL))  # loop still fine
        """,
        cohere_server,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("RerankitError ")
    assert "own event loop thread" in result.stdout
    assert "AsyncClient" in result.stdout
    assert len(cohere_server.received) == 1
