"""Request time limits kept with one timer per loop (``rerankit._deadlines``)."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

import rerankit
from rerankit import AsyncClient
from rerankit._deadlines import Deadlines
from rerankit.testing import CohereFake, FakeServer, Reply

pytestmark = pytest.mark.anyio

API_KEY = "deadline-key-123456"


async def limited(deadlines: Deadlines, seconds: float, work: float) -> str:
    """Sleep ``work`` seconds under a limit of ``seconds``: "done", or "timeout"."""
    task = asyncio.current_task()
    assert task is not None
    deadlines.start(task, seconds)
    try:
        await asyncio.sleep(work)
    except asyncio.CancelledError:
        if not deadlines.stop(task):
            raise
        return "timeout"
    finally:
        deadlines.stop(task)
    return "done"


async def test_each_request_ends_at_its_own_deadline() -> None:
    deadlines = Deadlines(asyncio.get_running_loop())
    started = time.monotonic()
    ended: dict[str, float] = {}

    async def run(name: str, seconds: float, work: float) -> str:
        outcome = await limited(deadlines, seconds, work)
        ended[name] = time.monotonic() - started
        return outcome

    outcomes = await asyncio.gather(
        run("long", 0.4, 5), run("short", 0.1, 5), run("quick", 5, 0.01), run("mid", 0.25, 5)
    )
    assert outcomes == ["timeout", "timeout", "done", "timeout"]
    assert ended["quick"] < ended["short"] < ended["mid"] < ended["long"] < 1.5
    assert ended["short"] >= 0.09
    assert ended["mid"] >= 0.24


async def test_requests_that_end_in_time_are_not_cancelled() -> None:
    deadlines = Deadlines(asyncio.get_running_loop())
    outcomes = await asyncio.gather(*(limited(deadlines, 0.05, 0.001) for _ in range(50)))
    assert set(outcomes) == {"done"}
    await asyncio.sleep(0.1)  # the timer fires for a deadline nobody holds any more
    assert await limited(deadlines, 1, 0) == "done"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() is Python 3.11+")
async def test_a_timeout_leaves_the_task_without_a_pending_cancel() -> None:
    deadlines = Deadlines(asyncio.get_running_loop())
    assert await limited(deadlines, 0.01, 5) == "timeout"
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # and no CancelledError is still on its way


async def test_a_cancel_from_outside_is_not_taken_for_a_timeout() -> None:
    deadlines = Deadlines(asyncio.get_running_loop())
    task = asyncio.create_task(limited(deadlines, 5, 5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_hung_provider_times_out_and_the_caller_carries_on() -> None:
    with FakeServer(CohereFake(API_KEY)) as server:
        server.fail(Reply(delay=5))
        async with AsyncClient(
            providers={"cohere": {"api_key": API_KEY, "api_base": server.url}},
            timeout=0.2,
            max_retries=0,
        ) as client:
            started = time.monotonic()
            with pytest.raises(rerankit.APITimeoutError, match="did not answer within 0.2 s"):
                await client.rerank("cohere/rerank-v3.5", "q", ["a", "b"])
            assert 0.19 <= time.monotonic() - started < 2
            task = asyncio.current_task()
            assert task is not None
            if sys.version_info >= (3, 11):
                assert task.cancelling() == 0
            response = await client.rerank("cohere/rerank-v3.5", "q", ["a", "b"])
            assert len(response.results) == 2


async def test_a_session_passed_in_is_used_and_left_open() -> None:
    import aiohttp

    settings = {"cohere": {"api_key": API_KEY}}
    with FakeServer(CohereFake(API_KEY)) as server:
        settings["cohere"]["api_base"] = server.url
        async with aiohttp.ClientSession(headers={"X-Caller": "mine"}) as session:
            async with AsyncClient(providers=settings, session=session) as client:
                response = await client.rerank("cohere/rerank-v3.5", "q", ["a", "b"])
            assert len(response.results) == 2
            assert server.received[-1].headers["x-caller"] == "mine"
            assert not session.closed
            server.fail(Reply(delay=5))
            async with AsyncClient(
                providers=settings, session=session, timeout=0.2, max_retries=0
            ) as client:
                with pytest.raises(rerankit.APITimeoutError):
                    await client.rerank("cohere/rerank-v3.5", "q", ["a", "b"])
            assert not session.closed
