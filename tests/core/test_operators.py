"""Tee / Merge / IterSource / Collector."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.core.clock import LoopClock
from streamkit.core.edge import Policy
from streamkit.core.operators import Collector, IterSource, Merge, Tee
from streamkit.core.packet import Flush, Gap, Packet
from streamkit.core.pipeline import Pipeline
from tests.core.helpers import SlowSink, packets

pytestmark = pytest.mark.looptime






async def test_tee_latest_output_never_holds_back_the_block_output() -> None:
    pipe = Pipeline(LoopClock())
    src_e = pipe.edge("src", 4)
    asr_e = pipe.edge("asr", 64, Policy.BLOCK)
    vis_e = pipe.edge("vision", 1, Policy.LATEST)
    pipe.add(
        IterSource("src", [*packets("a", 50), Gap("a", 1, 2)], paced=True), outputs={"out": src_e}
    )
    pipe.add(Tee("tee", ["asr", "vision"]), {"in": src_e}, {"asr": asr_e, "vision": vis_e})
    asr, vision = Collector("asr"), SlowSink("vision", 200)  # vision 10x slower than input
    pipe.add(asr, {"in": asr_e})
    pipe.add(vision, {"in": vis_e})
    await pipe.run()
    assert asr.payloads() == list(range(50))  # lossless, and not slowed down:
    assert pipe.metrics.histogram("e2e.tee.asr").max == 0
    assert len(vision.packets) < 10  # lossy: saw only the latest frames
    assert vis_e.stats().dropped == 50 - len(vision.packets)
    assert Gap("a", 1, 2) in asr.controls
    assert Gap("a", 1, 2) in vision.controls


async def test_tee_waits_only_for_a_full_block_output() -> None:
    pipe = Pipeline(LoopClock())
    src_e, fast_e, slow_e = pipe.edge("src", 2), pipe.edge("fast", 2), pipe.edge("slow", 2)
    pipe.add(IterSource("src", packets("a", 20)), outputs={"out": src_e})
    pipe.add(Tee("tee", ["fast", "slow"]), {"in": src_e}, {"fast": fast_e, "slow": slow_e})
    fast, slow = Collector("fast"), SlowSink("slow", 10)
    pipe.add(fast, {"in": fast_e})
    pipe.add(slow, {"in": slow_e})
    await pipe.run()
    assert fast.payloads() == slow.payloads() == list(range(20))  # BLOCK both: nothing lost


async def test_tee_filters_per_port_but_passes_controls() -> None:
    pipe = Pipeline(LoopClock())
    src_e, all_e, even_e = pipe.edge("src", 4), pipe.edge("all", 32), pipe.edge("even", 32)
    pipe.add(IterSource("src", [*packets("a", 10), Gap("a", 1, 2)]), outputs={"out": src_e})
    tee = Tee("tee", ["all", "even"], accept={"even": lambda p: p.payload % 2 == 0})
    pipe.add(tee, {"in": src_e}, {"all": all_e, "even": even_e})
    every, even = Collector("all"), Collector("even")
    pipe.add(every, {"in": all_e})
    pipe.add(even, {"in": even_e})
    await pipe.run()
    assert every.payloads() == list(range(10))
    assert even.payloads() == [0, 2, 4, 6, 8]
    assert Gap("a", 1, 2) in even.controls
    with pytest.raises(ValueError, match="unknown ports"):
        Tee("tee", ["all"], accept={"other": lambda p: True})


async def test_merge_interleaves_in_arrival_order_and_ends_after_all_inputs() -> None:
    pipe = Pipeline(LoopClock())
    a, v, out = pipe.edge("a"), pipe.edge("v"), pipe.edge("out")
    pipe.add(IterSource("audio", packets("audio", 10, 20), paced=True), outputs={"out": a})
    pipe.add(
        IterSource("video", [*packets("video", 3, 33), Flush(1)], paced=True), outputs={"out": v}
    )
    pipe.add(Merge("merge", ["audio", "video"]), {"audio": a, "video": v}, {"out": out})
    sink = Collector()
    pipe.add(sink, {"in": out})
    await pipe.run()
    got = [(p.stream, p.pts) for p in sink.packets]
    assert len(got) == 13
    assert [pts for _, pts in got] == sorted(pts for _, pts in got)  # arrival = pts order
    assert Flush(1) in sink.controls
    assert sink.ended.is_set()


async def test_iter_source_stops_on_drain() -> None:
    pipe = Pipeline(LoopClock())
    e = pipe.edge("e")
    src = IterSource("src", packets("a", 10_000), paced=True)
    pipe.add(src, outputs={"out": e})
    sink = Collector()
    pipe.add(sink, {"in": e})
    async with asyncio.TaskGroup() as tg:
        tg.create_task(pipe.run())
        await asyncio.sleep(1.0)
        pipe.drain()
    assert 49 <= len(sink.packets) <= 52
    assert sink.packets[0].pts == pipe.state.base_time


def test_operator_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Tee("t", [])
    with pytest.raises(ValueError, match="duplicate"):
        Tee("t", ["a", "a"])
    with pytest.raises(ValueError, match="at least one"):
        Merge("m", [])


async def test_function_chain_fans_out_filters_and_keeps_order() -> None:
    from streamkit.core.function_stage import chain, function_stage

    def split(p: Packet[int]) -> list[Packet[int]]:
        return [p.derive(p.payload * 10), p.derive(p.payload * 10 + 1)]

    def odd_only(p: Packet[int]) -> Packet[int] | None:
        return p if p.payload % 2 else None

    for every in (0, 1, 3):
        pipe = Pipeline(LoopClock())
        a, b = pipe.edge("a"), pipe.edge("b")
        pipe.add(IterSource("src", packets("a", 6)), outputs={"out": a})
        fused = chain(
            "c",
            function_stage("inc", lambda p: p.derive(p.payload + 1)),
            function_stage("split", split),
            function_stage("odd", odd_only),
            function_stage("neg", lambda p: p.derive(-p.payload)),
            time_every=every,
        )
        pipe.add(fused, {"in": a}, {"out": b})
        sink = Collector()
        pipe.add(sink, {"in": b})
        await pipe.run()
        assert sink.payloads() == [-(10 * (i + 1) + 1) for i in range(6)], every
