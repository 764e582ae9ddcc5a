"""ModelSlot: one call at a time, also when a caller is cancelled mid-call (real threads)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from streamkit.clock import LoopClock
from streamkit.compute import ModelSlot


async def test_cancelled_caller_keeps_the_slot_until_its_thread_finishes() -> None:
    slot = ModelSlot("m", LoopClock(), "thread")
    release = threading.Event()
    running = 0
    peak = 0
    guard = threading.Lock()

    def work() -> int:
        nonlocal running, peak
        with guard:
            running += 1
            peak = max(peak, running)
        release.wait(5)
        with guard:
            running -= 1
        return 1

    async with asyncio.TaskGroup() as group:
        first = group.create_task(slot.call(work))
        await LoopClock().sleep(20_000_000)  # the first call is now inside its thread
        second = group.create_task(slot.call(work))
        await LoopClock().sleep(20_000_000)
        first.cancel()
        await LoopClock().sleep(20_000_000)
        assert not second.done()  # still waiting: the cancelled call's thread holds the slot
        release.set()
    assert first.cancelled()
    assert second.result() == 1
    assert peak == 1


@pytest.mark.looptime
async def test_virtual_mode_charges_the_given_cost() -> None:
    clock = LoopClock()
    slot = ModelSlot("m", clock, "virtual")
    start = clock.now()
    assert await slot.call(lambda: 7, charge=250_000_000) == 7
    assert clock.now() - start == 250_000_000
    assert slot.busy_ns == 250_000_000
