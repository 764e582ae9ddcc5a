"""ModelSlot: one call at a time, also when a caller is cancelled mid-call (real threads)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from streamkit.core.clock import LoopClock
from streamkit.core.compute import LoopLock, ModelSlot


class BlockingWork:
    """A model call that blocks its thread until ``release``; counts calls running at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running = 0
        self.peak = 0
        self._guard = threading.Lock()

    def __call__(self) -> int:
        with self._guard:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.release.wait(5)
        with self._guard:
            self.running -= 1
        return 1


async def test_cancelled_caller_keeps_the_slot_until_its_thread_finishes() -> None:
    slot = ModelSlot("m", LoopClock(), "thread")
    work = BlockingWork()

    async with asyncio.TaskGroup() as group:
        first = group.create_task(slot.call(work))
        await LoopClock().sleep(20_000_000)  # the first call is now inside its thread
        second = group.create_task(slot.call(work))
        await LoopClock().sleep(20_000_000)
        first.cancel()
        await LoopClock().sleep(20_000_000)
        assert not second.done()  # still waiting: the cancelled call's thread holds the slot
        work.release.set()
    assert first.cancelled()
    assert second.result() == 1
    assert work.peak == 1


@pytest.mark.looptime
async def test_virtual_mode_charges_the_given_cost() -> None:
    clock = LoopClock()
    slot = ModelSlot("m", clock, "virtual")
    start = clock.now()
    assert await slot.call(lambda: 7, charge=250_000_000) == 7
    assert clock.now() - start == 250_000_000
    assert slot.busy_ns == 250_000_000


async def test_concurrency_two_runs_two_calls_at_once_and_no_more() -> None:
    slot = ModelSlot("m", LoopClock(), "thread", concurrency=2)
    work = BlockingWork()

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(slot.call(work)) for _ in range(3)]
        await LoopClock().sleep(50_000_000)
        assert (slot.running, slot.waiting) == (2, 1)
        tasks[0].cancel()  # its thread keeps its place until it finishes
        await LoopClock().sleep(20_000_000)
        assert (slot.running, slot.waiting) == (2, 1)
        work.release.set()
    assert tasks[0].cancelled()
    assert [t.result() for t in tasks[1:]] == [1, 1]
    assert work.peak == 2
    assert (slot.running, slot.waiting) == (0, 0)


@pytest.mark.looptime
async def test_queued_calls_go_by_priority_then_first_come() -> None:
    clock = LoopClock()
    slot = ModelSlot("m", clock, "virtual")
    order: list[str] = []

    async def call(label: str, priority: int) -> None:
        await slot.call(lambda: order.append(label), charge=100_000_000, priority=priority)

    async with asyncio.TaskGroup() as group:
        group.create_task(call("running", 1))
        await clock.sleep(1_000_000)
        for label, priority in [("p1", 1), ("f1", 0), ("p2", 1), ("f2", 0)]:
            group.create_task(call(label, priority))
            await clock.sleep(1_000_000)
        assert slot.waiting == 4
    assert order == ["running", "f1", "f2", "p1", "p2"]


@pytest.mark.looptime
async def test_a_waiter_cancelled_in_the_queue_gives_up_its_place() -> None:
    clock = LoopClock()
    slot = ModelSlot("m", clock, "virtual")
    order: list[str] = []

    async def call(label: str) -> None:
        await slot.call(lambda: order.append(label), charge=100_000_000)

    async with asyncio.TaskGroup() as group:
        group.create_task(call("a"))
        await clock.sleep(1_000_000)
        b = group.create_task(call("b"))
        group.create_task(call("c"))
        await clock.sleep(1_000_000)
        b.cancel()
    assert order == ["a", "c"]
    assert b.cancelled()
    assert (slot.running, slot.waiting) == (0, 0)


def test_a_loop_lock_serves_one_model_from_successive_event_loops() -> None:
    """A model loaded once is used by each test's (or replay's) loop: a plain asyncio.Lock,
    once a caller waited on it, fails on the next loop; a LoopLock does not."""

    async def contend(lock: Any) -> list[str]:
        order: list[str] = []

        async def hold(name: str) -> None:
            async with lock:
                order.append(f"{name}+")
                await asyncio.sleep(0)
                order.append(f"{name}-")

        await asyncio.gather(hold("a"), hold("b"))  # b waits: the lock meets the loop
        assert not lock.locked()
        return order

    shared = LoopLock()
    for _ in range(2):
        assert asyncio.run(contend(shared)) == ["a+", "a-", "b+", "b-"]
    plain = asyncio.Lock()
    asyncio.run(contend(plain))
    with pytest.raises(RuntimeError, match="different event loop"):
        asyncio.run(contend(plain))
