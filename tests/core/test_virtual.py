"""run_virtual: a whole pipeline on virtual time outside pytest's looptime plugin."""

from __future__ import annotations

import time

from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock
from streamkit.core.operators import Collector, IterSource
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline
from streamkit.testing import run_virtual


async def _paced_audio(n: int) -> tuple[int, int, int]:
    pipe = Pipeline(LoopClock())
    e = pipe.edge("e")
    src = (Packet("a", i, i * 20 * NS_PER_MS, 20 * NS_PER_MS, i) for i in range(n))
    pipe.add(IterSource("src", src, paced=True), outputs={"out": e})
    sink = Collector()
    pipe.add(sink, {"in": e})
    await pipe.run()
    assert pipe.state.base_time is not None
    return pipe.state.base_time, LoopClock().now(), len(sink.packets)


def test_run_virtual_replays_two_minutes_fast_with_exact_time() -> None:
    n = 6_000  # 2 min of 20 ms packets
    started = time.perf_counter()
    base, end, count = run_virtual(_paced_audio(n), start=100.0, noop_cycles=1)
    assert count == n
    assert base == 100 * NS_PER_S
    assert end - base == (n - 1) * 20 * NS_PER_MS
    assert time.perf_counter() - started < 30  # ~1 s here instead of 120 s of real time


def test_run_virtual_default_loop() -> None:
    base, end, count = run_virtual(_paced_audio(50))
    assert (base, end - base, count) == (0, 49 * 20 * NS_PER_MS, 50)
