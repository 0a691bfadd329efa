"""The transport's connection slots: free ones are taken at once, waiters served in order."""

from __future__ import annotations

import asyncio

import pytest

from rerankit._http import _Slots

pytestmark = pytest.mark.anyio


async def test_waiters_get_slots_in_arrival_order() -> None:
    slots = _Slots(1)
    assert slots.take_now()
    assert not slots.take_now()
    served: list[int] = []

    async def wait(number: int) -> None:
        await slots.take()
        served.append(number)

    tasks = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    for _ in range(3):
        slots.give()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert served == [0, 1, 2]
    slots.give()
    assert slots.free == 1


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    slots = _Slots(1)
    assert slots.take_now()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    slots.give()
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
    slots.give()
    assert slots.free == 1
    assert slots.take_now()


async def test_a_slot_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    slots = _Slots(1)
    assert slots.take_now()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.give()  # to ``first``, which is cancelled before it runs again
    first.cancel()
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
    slots.give()
    assert slots.free == 1
