"""The one shared clock: integer nanoseconds read from the running event loop.

Every timestamp in streamkit is a :data:`Nanos` on the shared clock. The real clock reads
``loop.time()`` so that a virtual-time event loop (``looptime`` in tests, or
:mod:`streamkit.testing.virtual`) drives the whole system deterministically. Float seconds
appear only at the edges (display, files). This is the only module allowed to call
``asyncio.sleep``; everything else waits through a :class:`Clock`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = [
    "NS_PER_MS",
    "NS_PER_S",
    "NS_PER_US",
    "Clock",
    "LoopClock",
    "ManualClock",
    "Nanos",
    "from_seconds",
    "to_seconds",
    "wait_any",
    "wall_offset",
]

Nanos = int
"""A time or duration in integer nanoseconds on the shared clock."""

NS_PER_S: Nanos = 1_000_000_000
NS_PER_MS: Nanos = 1_000_000
NS_PER_US: Nanos = 1_000


def to_seconds(ns: Nanos) -> float:
    """Nanoseconds → float seconds (for display and files only)."""
    return ns / NS_PER_S


def from_seconds(seconds: float) -> Nanos:
    """Float seconds → nanoseconds, rounded to the nearest nanosecond."""
    return round(seconds * NS_PER_S)


def wall_offset(clock: Clock) -> Nanos:
    """Unix time minus ``clock.now()`` (ns), read once: add it to a shared-clock time to get
    wall time for an exporter at the edge (traces, files). Never used to measure."""
    return time.time_ns() - clock.now()


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock in nanoseconds that async code can wait on."""

    def now(self) -> Nanos:
        """Current time on the shared clock (ns)."""
        ...

    async def sleep_until(self, deadline: Nanos) -> None:
        """Wait until ``now() >= deadline``; returns at once when already past."""
        ...

    async def sleep(self, duration: Nanos) -> None:
        """Wait ``duration`` ns (≤ 0 yields once to the loop)."""
        ...


class LoopClock:
    """The real shared clock: ``loop.time()`` (monotonic) in integer nanoseconds.

    Under a virtual-time loop the same class reads virtual time, so code never needs to
    know which kind of loop it runs on. Must be used from within a running loop. (It keeps
    the loop's ``time`` method of the last loop it saw: ``now()`` is on every hot path.)
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._time: Callable[[], float] | None = None

    def now(self) -> Nanos:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._time = loop.time
        assert self._time is not None
        return round(self._time() * NS_PER_S)

    async def sleep_until(self, deadline: Nanos) -> None:
        await self.sleep(deadline - self.now())

    async def sleep(self, duration: Nanos) -> None:
        await asyncio.sleep(max(0, duration) / NS_PER_S)


class ManualClock:
    """A clock advanced by hand, for pure (sans-I/O) unit tests and offline tools.

    ``sleep_until`` advances the clock to the deadline immediately (it never blocks), so
    code that waits on a ManualClock runs as fast as possible in logical time.
    """

    def __init__(self, start: Nanos = 0) -> None:
        self._now: Nanos = start

    def now(self) -> Nanos:
        return self._now

    def advance(self, duration: Nanos) -> Nanos:
        """Move time forward by ``duration`` ns (must be ≥ 0); returns the new time."""
        if duration < 0:
            raise ValueError(f"cannot move a clock backwards by {duration} ns")
        self._now += duration
        return self._now

    def set(self, t: Nanos) -> None:
        """Jump to ``t`` (must not be earlier than now)."""
        self.advance(t - self._now)

    async def sleep_until(self, deadline: Nanos) -> None:
        if deadline > self._now:
            self._now = deadline
        await asyncio.sleep(0)

    async def sleep(self, duration: Nanos) -> None:
        await self.sleep_until(self._now + max(0, duration))


async def wait_any(
    *events: asyncio.Event, clock: Clock | None = None, deadline: Nanos | None = None
) -> None:
    """Return when any of ``events`` is set or ``clock`` reaches ``deadline`` (ns on the
    shared clock; ``None``: no deadline). With neither, it waits until cancelled.

    The one race between wake-ups and a deadline: its waiters live in a TaskGroup and are
    cancelled as soon as one of them finishes.
    """
    if any(event.is_set() for event in events):
        return
    if deadline is not None and clock is None:
        raise ValueError("a deadline needs the clock it is on")
    if deadline is None and len(events) == 1:  # nothing to race: no tasks
        await events[0].wait()
        return
    if deadline is not None and clock is not None and not events:
        await clock.sleep_until(deadline)
        return
    async with asyncio.TaskGroup() as group:
        waiters: list[asyncio.Task[object]] = [group.create_task(event.wait()) for event in events]
        if deadline is not None and clock is not None:
            waiters.append(group.create_task(clock.sleep_until(deadline)))
        if not waiters:
            waiters.append(group.create_task(asyncio.Event().wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
