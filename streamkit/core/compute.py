"""Running blocking model calls from async code: one slot per model, real or virtual time.

A :class:`ModelSlot` bounds the calls to one model: ``concurrency`` calls at a time (default 1,
for a model that is not thread-safe; more for one built with several workers, e.g. CTranslate2's
``num_workers``). Callers queue by ``priority`` (lower first), then in FIFO order, so several
sessions share one loaded model fairly and urgent calls (an utterance's final decode) overtake
speculative ones (partial decodes).

Two modes:

- ``"thread"`` (live): the call runs in a worker thread; the event loop stays responsive.
- ``"virtual"`` (replay on a virtual-time loop): the call runs inline — really computing —
  then the slot charges virtual time with ``clock.sleep(cost)``, where ``cost`` is the measured
  wall time of the call (``charge=None``) or ``charge(result_size…)`` given by the caller for
  fully deterministic traces. Under looptime, a thread would let virtual time jump ahead while
  the model computes; inline + charge keeps latencies honest and reproducible.

Cancellation: if the awaiting task is cancelled while a thread call runs, the call finishes in
its thread and its result is discarded (the caller bumps its epoch); the slot is released only
when the thread is done, so a model never runs more than ``concurrency`` calls at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Literal, ParamSpec, TypeVar

from streamkit.core.clock import Clock, Nanos
from streamkit.core.metrics import MetricsRegistry

__all__ = ["ComputeMode", "LoopLock", "ModelSlot", "measure_ns"]

P = ParamSpec("P")
R = TypeVar("R")

ComputeMode = Literal["thread", "virtual"]


class LoopLock:
    """An ``asyncio.Lock`` for a model that outlives event loops (loaded once per process,
    used by each test's, replay's or server's loop): one lock per running loop. A plain lock
    binds to the first loop on which a caller had to wait, and then fails on every other
    loop ("is bound to a different event loop") — a session's pipeline died with it.
    Use it as ``async with lock:`` and ``lock.locked()`` from a running loop."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def locked(self) -> bool:
        """Held on the running loop."""
        return self._lock().locked()

    async def __aenter__(self) -> None:
        await self._lock().acquire()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._lock().release()


def measure_ns(fn: Callable[[], R]) -> tuple[R, Nanos]:
    """Call ``fn`` and return its result with its wall-clock duration in ns.

    Uses ``time.perf_counter_ns`` — a compute cost, never a media timestamp.
    """
    started = time.perf_counter_ns()
    result = fn()
    return result, time.perf_counter_ns() - started


class ModelSlot:
    """One model, ``concurrency`` calls at a time, in threads (live) or inline with charged
    time (virtual).

    Args:
        name: model name, used for the ``model.<name>.compute`` histogram.
        clock: the shared clock (virtual mode sleeps on it).
        mode: ``"thread"`` or ``"virtual"``.
        metrics: where compute times and queue waits are recorded (optional).
        concurrency: how many calls may run at once (≥ 1). In virtual mode calls still run
            inline one after the other, but their charged times overlap (``concurrency``
            workers of virtual time).
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        mode: ComputeMode = "thread",
        metrics: MetricsRegistry | None = None,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.name = name
        self.clock = clock
        self.mode: ComputeMode = mode
        self.metrics = metrics
        self.concurrency = concurrency
        self._free = concurrency
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # heap
        self._seq = 0
        self.busy_ns: Nanos = 0
        self.calls = 0

    @property
    def waiting(self) -> int:
        """Callers queued for the slot now (not counting the calls running)."""
        return len(self._waiters)

    @property
    def running(self) -> int:
        """Calls holding the slot now (running, or granted and about to run)."""
        return self.concurrency - self._free

    async def _acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (priority, self._seq, waiter)
        self._seq += 1
        heapq.heappush(self._waiters, entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # granted just as we were cancelled: pass it on
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def _release(self) -> None:
        """Hand the freed place to the first waiter (by priority, then FIFO), else free it."""
        while self._waiters:
            waiter = heapq.heappop(self._waiters)[2]
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    async def call(
        self,
        fn: Callable[[], R],
        *,
        charge: Nanos | Literal["cpu"] | None = None,
        priority: int = 0,
    ) -> R:
        """Run ``fn()`` on this model's slot and return its result.

        ``charge`` (virtual mode only) overrides the measured wall time: a fixed cost (ns),
        for bit-identical replays, or ``"cpu"``: the call's process CPU time (what it costs
        on an uncontended core; steadier than wall time on a shared machine).
        ``priority``: queued callers with a lower value go first (equal values: first come,
        first served); a running call is never preempted.
        """
        queued_at = self.clock.now()
        await self._acquire(priority)
        try:
            waited = self.clock.now() - queued_at
            if self.mode == "virtual":
                if charge == "cpu":
                    before = time.process_time_ns()
                    result = fn()
                    cost = time.process_time_ns() - before
                else:
                    result, cost = measure_ns(fn)
                    cost = cost if charge is None else charge
                await self.clock.sleep(cost)
            else:
                result, cost = await self._in_thread(fn)
            self.calls += 1
            self.busy_ns += cost
            if self.metrics is not None:
                self.metrics.histogram(f"model.{self.name}.compute").observe(cost)
                self.metrics.histogram(f"model.{self.name}.wait").observe(waited)
            return result
        finally:
            self._release()

    @staticmethod
    async def _in_thread(fn: Callable[[], R]) -> tuple[R, Nanos]:
        """Run ``fn`` in the default executor; if cancelled, wait for the thread to finish
        (keeping the slot held, so the model never runs more calls than allowed), then
        re-raise."""
        future = asyncio.get_running_loop().run_in_executor(None, measure_ns, fn)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([future])
            raise
