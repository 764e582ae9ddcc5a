"""Running code on a virtual-time event loop outside pytest (benchmarks, replay, tools).

Tests use ``@pytest.mark.looptime``. Everything else calls :func:`run_virtual`, which runs a
coroutine on a `looptime <https://pypi.org/project/looptime/>`_ event loop: ``loop.time()``
starts at ``start`` and jumps straight to the next timer whenever every task is waiting, so
an hour of paced media replays in milliseconds while every timestamp stays exact. Real I/O
(sockets, threads) still works; time only jumps while nothing is ready to run.

The loop's resolution is 1 ns (looptime's default is 1 µs), matching :data:`Nanos`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["new_virtual_loop", "run_virtual"]

R = TypeVar("R")


def new_virtual_loop(start: float = 0.0, *, noop_cycles: int = 42) -> asyncio.AbstractEventLoop:
    """A new event loop on virtual time starting at ``start`` seconds (not yet running).

    ``noop_cycles``: loop iterations looptime lets pass with nothing to do before it jumps
    to the next timer (its default, 42, lets chained awaits schedule their timers first;
    1 is faster for long replays of simple pipelines).
    """
    try:
        import looptime
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "virtual time needs the 'looptime' package: pip install 'looptime>=0.2' "
            "(it is in streamkit's dev extra)"
        ) from error
    loop: asyncio.AbstractEventLoop = looptime.new_event_loop(
        start=start, resolution=1e-9, noop_cycles=noop_cycles
    )
    return loop


def run_virtual(coro: Coroutine[Any, Any, R], start: float = 0.0, *, noop_cycles: int = 42) -> R:
    """Run ``coro`` to completion on a fresh virtual-time loop and return its result.

    Like :func:`asyncio.run` (the loop is closed afterwards, async generators and the default
    executor shut down), but ``loop.time()`` — hence :class:`~streamkit.core.clock.LoopClock` —
    is virtual and starts at ``start`` seconds.
    """
    with asyncio.Runner(
        loop_factory=lambda: new_virtual_loop(start, noop_cycles=noop_cycles)
    ) as runner:
        return runner.run(coro)
