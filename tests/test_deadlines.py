"""Request time limits kept with one timer per loop (``rerankit._deadlines``)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import anyio
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


# --- the caller's cancellation always wins over the deadline's ---------------------------------

HANG = Reply(delay=5)
CALLER_LIMITS = ("cancel", "wait_for", "fail_after", "move_on_after")
"""How a caller limits a call: a ``task.cancel()`` after a while, ``asyncio.wait_for``, and
anyio's ``fail_after`` and ``move_on_after`` cancel scopes."""
CALLER_WON = {
    "cancel": "CancelledError",
    "wait_for": "TimeoutError",
    "fail_after": "TimeoutError",
    "move_on_after": "moved on",
}


async def limited_by_caller(how: str, limit: float, call: Coroutine[Any, Any, object]) -> str:
    """Await ``call`` under the caller's own limit of ``limit`` seconds, set as ``how`` says:
    what the caller got (the name of rerankit's error, if it raised one)."""
    try:
        if how == "cancel":
            task = asyncio.ensure_future(call)
            asyncio.get_running_loop().call_later(limit, task.cancel)
            await task
        elif how == "wait_for":
            await asyncio.wait_for(call, limit)
        elif how == "fail_after":
            with anyio.fail_after(limit):
                await call
        else:
            with anyio.move_on_after(limit) as scope:
                await call
            return "moved on" if scope.cancelled_caught else "answered"
    except rerankit.RerankitError as exc:
        return type(exc).__name__
    except (TimeoutError, asyncio.TimeoutError):
        return "TimeoutError"
    except asyncio.CancelledError:  # ``task``'s, not this task's (then this would be cancelled)
        return "CancelledError"
    return "answered"


async def in_flight(server: FakeServer, count: int) -> None:
    """Wait until the server holds ``count`` requests."""
    for _ in range(500):
        if server.in_flight == count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{server.in_flight} requests in flight, expected {count}")


async def call_each_way(
    deadline: float, limit: float, *, max_retries: int = 2, stand_still: float = 0
) -> dict[str, tuple[str, int]]:
    """Call a hanging provider once per way in ``CALLER_LIMITS``, all at once, with the
    timeout ``deadline`` and the caller's ``limit``; then, once the server holds every request,
    keep the loop still for ``stand_still`` seconds. Per way: what the caller got, and the
    requests sent."""
    with FakeServer(CohereFake(API_KEY)) as server:
        server.fail(*[HANG] * len(CALLER_LIMITS) * (max_retries + 1))
        async with AsyncClient(
            providers={"cohere": {"api_key": API_KEY, "api_base": server.url}},
            timeout=deadline,
            max_retries=max_retries,
        ) as client:
            calls = {
                how: asyncio.ensure_future(
                    limited_by_caller(
                        how,
                        limit,
                        client.rerank(
                            "cohere/rerank-v3.5", "q", ["a"], extra_headers={"x-how": how}
                        ),
                    )
                )
                for how in CALLER_LIMITS
            }
            await in_flight(server, len(calls))
            time.sleep(stand_still)  # noqa: ASYNC251 (every timer due by then fires at once)
            outcomes = {how: await call for how, call in calls.items()}
        sent = Counter(request.headers["x-how"] for request in server.received)
        return {how: (outcome, sent[how]) for how, outcome in outcomes.items()}


CALLER_WON_WITH_ONE_REQUEST = {how: (outcome, 1) for how, outcome in CALLER_WON.items()}


async def test_the_callers_limit_ends_a_hanging_request_without_retries() -> None:
    assert await call_each_way(deadline=30, limit=0.2) == CALLER_WON_WITH_ONE_REQUEST


@pytest.mark.slow
@pytest.mark.parametrize(
    "limit", [0.5, 0.6], ids=["the callers limit ends first", "the deadline passes first"]
)
async def test_the_callers_limit_wins_when_the_deadline_passes_at_once(limit: float) -> None:
    """Both limits pass while the loop stands still, so both cancel the call in the loop's next
    iteration, the earlier one first: the caller's wins, in either order, without a retry."""
    outcomes = await call_each_way(deadline=0.5, limit=limit, stand_still=0.7)
    assert outcomes == CALLER_WON_WITH_ONE_REQUEST


async def test_the_deadline_alone_still_times_out_and_retries() -> None:
    outcomes = await call_each_way(deadline=0.2, limit=30, max_retries=1)
    assert outcomes == dict.fromkeys(CALLER_LIMITS, ("APITimeoutError", 2))
