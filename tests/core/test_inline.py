"""Inline (push-mode) function stages: order, control events, backpressure, failures, leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from streamkit.core.clock import NS_PER_MS, LoopClock
from streamkit.core.edge import Edge, Policy
from streamkit.core.function_stage import chain, function_stage
from streamkit.core.operators import Collector, IterSource
from streamkit.core.packet import Control, Flush, Gap, Packet
from streamkit.core.pipeline import Pipeline, StageFailed
from streamkit.core.stage import StageContext
from tests.core.helpers import SlowSink, packets

pytestmark = pytest.mark.looptime


@pytest.fixture
async def no_leaks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    leaked = {t for t in asyncio.all_tasks() - before if not t.done() and t is not current}
    assert not leaked, f"tasks outlived the pipeline: {leaked}"






class Recorder:
    """A function-stage sink body: records what it sees."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, packet: Packet[Any]) -> None:
        self.seen.append(packet.payload)


class Putter:
    """A source that records, after each ``put`` returns, what the inline sink had seen."""

    def __init__(self, name: str, items: list[Packet[Any] | Control], rec: Recorder) -> None:
        self.name = name
        self.items = items
        self.rec = rec
        self.seen_after_put: list[int] = []

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output()
        for item in self.items:
            await out.put(item)
            self.seen_after_put.append(len(self.rec.seen))


async def test_inline_chain_and_sink_run_in_the_producers_task(no_leaks: None) -> None:
    rec = Recorder()
    pipe = Pipeline(LoopClock())
    a, b = pipe.edge("a", 2), pipe.edge("b", 2)
    src = Putter("src", list(packets("a", 50)), rec)
    pipe.add(src, outputs={"out": a})
    fused = chain(
        "c",
        function_stage("inc", lambda p: p.derive(p.payload + 1)),
        function_stage("neg", lambda p: p.derive(-p.payload)),
        inline=True,
    )
    pipe.add(fused, {"in": a}, {"out": b})
    pipe.add(function_stage("sink", rec, inline=True), {"in": b})
    await pipe.run()
    assert rec.seen == [-(i + 1) for i in range(50)]
    # each packet reached the sink before the source's put returned: no queue hop at all
    assert src.seen_after_put == list(range(1, 51))
    for edge in (a, b):
        stats = edge.stats()
        assert (stats.put, stats.got, stats.peak, stats.depth) == (50, 50, 0, 0)
        assert stats.closed


async def test_order_and_control_events_kept_mixed_with_queued_items(no_leaks: None) -> None:
    items: list[Packet[Any] | Control] = []
    for i, packet in enumerate(packets("a", 40)):
        items.append(packet)
        if i % 7 == 3:
            items.append(Gap("a", packet.end, packet.end + NS_PER_MS, "test"))
        if i % 11 == 5:
            items.append(Flush(i, "test"))

    def split(p: Packet[int]) -> list[Packet[int]]:
        return [p.derive(p.payload * 10), p.derive(p.payload * 10 + 1)]

    def odd_only(p: Packet[int]) -> Packet[int] | None:
        return p if p.payload % 2 else None

    for every in (0, 1, 3):
        pipe = Pipeline(LoopClock())
        a, b = pipe.edge("a", 2), pipe.edge("b", 3)
        pipe.add(IterSource("src", items), outputs={"out": a})
        fused = chain(
            "c",
            function_stage("split", split),
            function_stage("odd", odd_only),
            time_every=every,
            inline=True,
        )
        pipe.add(fused, {"in": a}, {"out": b})
        sink = SlowSink("sink", 3)  # a task behind a bounded edge: pushes block, items queue
        pipe.add(sink, {"in": b})
        await pipe.run()
        expected: list[object] = []
        for item in items:
            if isinstance(item, Packet):
                expected.append(item.payload * 10 + 1)
            else:
                expected.append(item)
        got = [item.payload if isinstance(item, Packet) else item for item in sink.items]
        assert got == expected, every
        assert b.stats().peak <= 3


async def test_backpressure_reaches_the_producer_and_edges_stay_bounded(no_leaks: None) -> None:
    class Stamped:
        name = "src"

        def __init__(self) -> None:
            self.put_done: list[int] = []

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            out = ctx.output()
            for packet in packets("a", 20):
                await out.put(packet)
                self.put_done.append(ctx.clock.now())

    src = Stamped()
    pipe = Pipeline(LoopClock())
    a, b = pipe.edge("a", 2), pipe.edge("b", 2)
    pipe.add(src, outputs={"out": a})
    pipe.add(function_stage("f", lambda p: p, inline=True), {"in": a}, {"out": b})
    sink = SlowSink("sink", 10)
    pipe.add(sink, {"in": b})
    t0 = LoopClock().now()
    await pipe.run()
    assert sink.payloads() == list(range(20))
    assert a.stats().peak <= 2
    assert b.stats().peak <= 2
    # the producer is paced by the slow sink (10 ms per packet), give or take the buffers
    assert src.put_done[-1] - t0 >= (20 - 2 - 2 - 1) * 10 * NS_PER_MS


async def test_two_producers_one_inline_stage_keep_per_producer_order(no_leaks: None) -> None:
    class TwoProducers:
        name = "src"

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            out = ctx.output()

            async def produce(stream: str) -> None:
                for packet in packets(stream, 30):
                    await out.put(packet)

            async with asyncio.TaskGroup() as group:
                group.create_task(produce("x"))
                group.create_task(produce("y"))

    pipe = Pipeline(LoopClock())
    a, b = pipe.edge("a", 1), pipe.edge("b", 1)
    pipe.add(TwoProducers(), outputs={"out": a})
    pipe.add(function_stage("f", lambda p: p, inline=True), {"in": a}, {"out": b})
    sink = SlowSink("sink", 1)
    pipe.add(sink, {"in": b})
    await pipe.run()
    for stream in ("x", "y"):
        assert [p.payload for p in sink.packets if p.stream == stream] == list(range(30))


@pytest.mark.parametrize("where", ["inline", "queued"])
async def test_failure_in_an_inline_chain_names_the_chain(where: str, no_leaks: None) -> None:
    def bad(p: Packet[int]) -> Packet[int]:
        if p.payload == 3:
            raise ValueError("bad packet 3")
        return p

    class NoWait:
        """put_nowait always queues: the chain's own task meets the failure."""

        name = "src"

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            for packet in packets("a", 8):
                assert ctx.output().put_nowait(packet)
            await ctx.clock.sleep(10**12)

    pipe = Pipeline(LoopClock())
    a, b = pipe.edge("a", 8), pipe.edge("b", 1)
    source = IterSource("src", packets("a", 100)) if where == "inline" else NoWait()
    pipe.add(source, outputs={"out": a})
    pipe.add(chain("c", function_stage("bad", bad), inline=True), {"in": a}, {"out": b})
    sink = Collector() if where == "inline" else SlowSink("sink", 5)
    pipe.add(sink, {"in": b})
    with pytest.raises(StageFailed) as info:
        await pipe.run()
    assert info.value.stage == "c"
    assert info.value.phase == "run"
    assert isinstance(info.value.__cause__, ValueError)
    if where == "inline":  # the sink saw the end of stream with the chain's error, in band
        assert sink.error is not None
        assert "bad packet 3" in sink.error
        assert sink.payloads() == [0, 1, 2]
    assert sink.payloads() == [0, 1, 2][: len(sink.payloads())]


async def test_inline_needs_a_block_edge(no_leaks: None) -> None:
    pipe = Pipeline(LoopClock())
    a = pipe.edge("a", 2, Policy.LATEST)
    pipe.add(IterSource("src", packets("a", 3)), outputs={"out": a})
    pipe.add(function_stage("f", lambda p: p, inline=True), {"in": a})
    with pytest.raises(StageFailed) as info:
        await pipe.run()
    assert info.value.stage == "f"
    assert info.value.phase == "setup"
    with pytest.raises(ValueError, match="BLOCK"):
        Edge[int]("e", 1, Policy.DROP_OLDEST).attach_inline(function_stage("g", lambda p: p))


async def test_abort_and_drain_with_inline_stages_leak_nothing(no_leaks: None) -> None:
    class Ticker:
        name = "src"

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            out = ctx.output()
            i = 0
            while not ctx.stopping:
                await out.put(Packet("a", i, ctx.clock.now(), 20 * NS_PER_MS, i))
                i += 1
                await ctx.clock.sleep(20 * NS_PER_MS)

    for how in ("drain", "abort"):
        rec = Recorder()
        pipe = Pipeline(LoopClock())
        a, b = pipe.edge("a"), pipe.edge("b")
        pipe.add(Ticker(), outputs={"out": a})
        pipe.add(function_stage("f", lambda p: p, inline=True), {"in": a}, {"out": b})
        pipe.add(function_stage("sink", rec, inline=True), {"in": b})
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(pipe.run())
            await asyncio.sleep(1.0)
            pipe.drain() if how == "drain" else pipe.abort()
        assert task.done()
        assert 49 <= len(rec.seen) <= 51
        assert rec.seen == list(range(len(rec.seen)))
        assert pipe.state.aborted == (how == "abort")


async def test_inline_stage_metrics_and_lineage() -> None:
    pipe = Pipeline(LoopClock())
    a, b = pipe.edge("a"), pipe.edge("b")
    items = [p.with_lineage(f"u{p.seq}") for p in packets("a", 16)]
    pipe.add(IterSource("src", items), outputs={"out": a})
    pipe.add(
        chain("c", function_stage("f", lambda p: p), time_every=4, inline=True),
        {"in": a},
        {"out": b},
    )
    sink = Collector()
    pipe.add(sink, {"in": b})
    await pipe.run()
    assert pipe.metrics.histogram("stage.c.latency").count == 16
    assert pipe.metrics.histogram("e2e.c.out").count == 16
    assert pipe.metrics.histogram("stage.c.f.latency").count == 4
    assert "c.out" in pipe.metrics.lineage.get("u5")
