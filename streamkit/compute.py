"""Running blocking model calls from async code: one slot per model, real or virtual time.

A :class:`ModelSlot` serialises calls to one model (one call at a time; callers queue in FIFO
order behind an ``asyncio.Lock``, so several sessions share one loaded model fairly).

Two modes:

- ``"thread"`` (live): the call runs in a worker thread; the event loop stays responsive.
- ``"virtual"`` (replay on a virtual-time loop): the call runs inline — really computing —
  then the slot charges virtual time with ``clock.sleep(cost)``, where ``cost`` is the measured
  wall time of the call (``charge=None``) or ``charge(result_size…)`` given by the caller for
  fully deterministic traces. Under looptime, a thread would let virtual time jump ahead while
  the model computes; inline + charge keeps latencies honest and reproducible.

Cancellation: if the awaiting task is cancelled while a thread call runs, the call finishes in
its thread and its result is discarded (the caller bumps its epoch); the slot is released only
when the thread is done, so a model never runs two calls at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Literal, ParamSpec, TypeVar

from streamkit.clock import Clock, Nanos
from streamkit.metrics import MetricsRegistry

__all__ = ["ComputeMode", "ModelSlot", "measure_ns"]

P = ParamSpec("P")
R = TypeVar("R")

ComputeMode = Literal["thread", "virtual"]


def measure_ns(fn: Callable[[], R]) -> tuple[R, Nanos]:
    """Call ``fn`` and return its result with its wall-clock duration in ns.

    Uses ``time.perf_counter_ns`` — a compute cost, never a media timestamp.
    """
    started = time.perf_counter_ns()
    result = fn()
    return result, time.perf_counter_ns() - started


class ModelSlot:
    """One model, one call at a time, in a thread (live) or inline with charged time (virtual).

    Args:
        name: model name, used for the ``model.<name>.compute`` histogram.
        clock: the shared clock (virtual mode sleeps on it).
        mode: ``"thread"`` or ``"virtual"``.
        metrics: where compute times and queue waits are recorded (optional).
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        mode: ComputeMode = "thread",
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.mode: ComputeMode = mode
        self.metrics = metrics
        self._lock = asyncio.Lock()
        self.busy_ns: Nanos = 0
        self.calls = 0

    async def call(
        self,
        fn: Callable[[], R],
        *,
        charge: Nanos | None = None,
    ) -> R:
        """Run ``fn()`` on this model's slot and return its result.

        ``charge`` (virtual mode only) overrides the measured cost with a fixed one, for
        bit-identical replays.
        """
        queued_at = self.clock.now()
        async with self._lock:
            waited = self.clock.now() - queued_at
            if self.mode == "virtual":
                result, cost = measure_ns(fn)
                await self.clock.sleep(cost if charge is None else charge)
                if charge is not None:
                    cost = charge
            else:
                result, cost = await self._in_thread(fn)
            self.calls += 1
            self.busy_ns += cost
            if self.metrics is not None:
                self.metrics.histogram(f"model.{self.name}.compute").observe(cost)
                self.metrics.histogram(f"model.{self.name}.wait").observe(waited)
            return result

    @staticmethod
    async def _in_thread(fn: Callable[[], R]) -> tuple[R, Nanos]:
        """Run ``fn`` in the default executor; if cancelled, wait for the thread to finish
        (keeping the slot held, so the model never runs two calls at once), then re-raise."""
        future = asyncio.get_running_loop().run_in_executor(None, measure_ns, fn)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([future])
            raise
