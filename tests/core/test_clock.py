"""The shared clock's helpers on virtual time: ``wait_any`` returns at the first wake-up."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.core.clock import NS_PER_MS, LoopClock, wait_any

pytestmark = pytest.mark.looptime


async def _set_after(event: asyncio.Event, clock: LoopClock, ns: int) -> None:
    await clock.sleep(ns)
    event.set()


async def test_an_event_wins_over_a_later_deadline() -> None:
    clock, wake = LoopClock(), asyncio.Event()
    start = clock.now()
    async with asyncio.TaskGroup() as group:
        group.create_task(_set_after(wake, clock, 30 * NS_PER_MS))
        await wait_any(wake, clock=clock, deadline=start + 100 * NS_PER_MS)
        assert clock.now() - start == 30 * NS_PER_MS


async def test_the_deadline_wins_when_no_event_comes() -> None:
    clock, wake, other = LoopClock(), asyncio.Event(), asyncio.Event()
    start = clock.now()
    await wait_any(wake, other, clock=clock, deadline=start + 50 * NS_PER_MS)
    assert clock.now() - start == 50 * NS_PER_MS
    assert not wake.is_set()
    assert not other.is_set()


async def test_any_of_several_events_and_a_set_event_returns_at_once() -> None:
    clock, first, second = LoopClock(), asyncio.Event(), asyncio.Event()
    start = clock.now()
    async with asyncio.TaskGroup() as group:
        group.create_task(_set_after(second, clock, 20 * NS_PER_MS))
        await wait_any(first, second)
    assert clock.now() - start == 20 * NS_PER_MS
    await wait_any(second, clock=clock, deadline=start)  # already set: no wait at all
    assert clock.now() - start == 20 * NS_PER_MS


async def test_a_deadline_needs_its_clock() -> None:
    with pytest.raises(ValueError, match="clock"):
        await wait_any(asyncio.Event(), deadline=1)
