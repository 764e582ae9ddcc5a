"""Pipeline lifecycle: readiness handshake, drain vs abort, failures naming the stage, no leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from streamkit.core.clock import NS_PER_MS, LoopClock
from streamkit.core.edge import Policy
from streamkit.core.function_stage import function_stage
from streamkit.core.operators import Collector
from streamkit.core.packet import EndOfStream, Packet
from streamkit.core.pipeline import Pipeline, StageFailed
from streamkit.core.stage import StageContext

pytestmark = pytest.mark.looptime


class Ticker:
    """A live-like source: one packet per 20 ms stamped now(), until drained (or ``n``)."""

    def __init__(self, name: str = "src", n: int | None = None, setup_ms: int = 0) -> None:
        self.name = name
        self.n = n
        self.setup_ms = setup_ms
        self.stamps: list[int] = []
        self.setup_done_at: int | None = None

    async def setup(self, ctx: StageContext) -> None:
        await ctx.clock.sleep(self.setup_ms * NS_PER_MS)
        self.setup_done_at = ctx.clock.now()

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output()
        i = 0
        while not ctx.stopping and (self.n is None or i < self.n):
            now = ctx.clock.now()
            self.stamps.append(now)
            await out.put(Packet("a", i, now, 20 * NS_PER_MS, i))
            i += 1
            await ctx.clock.sleep(20 * NS_PER_MS)


class Failing:
    def __init__(self, name: str, phase: str, after: int = 0) -> None:
        self.name = name
        self.phase = phase
        self.after = after

    async def setup(self, ctx: StageContext) -> None:
        if self.phase == "setup":
            raise ValueError("model file missing")

    async def run(self, ctx: StageContext) -> None:
        seen = 0
        async for _item in ctx.input():
            seen += 1
            if seen > self.after:
                raise ValueError(f"bad packet {seen}")


@pytest.fixture
async def no_leaks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()  # pytest-asyncio tears fixtures down in a fresh task
    leaked = {t for t in asyncio.all_tasks() - before if not t.done() and t is not current}
    assert not leaked, f"tasks outlived the pipeline: {leaked}"


def linear(src: object, *, capacity: int = 4) -> tuple[Pipeline, Collector]:
    pipe = Pipeline(LoopClock())
    a = pipe.edge("a", capacity)
    b = pipe.edge("b", capacity)
    sink = Collector()
    pipe.add(src, outputs={"out": a})  # type: ignore[arg-type]
    pipe.add(function_stage("pass", lambda p: p), {"in": a}, {"out": b})
    pipe.add(sink, {"in": b})
    return pipe, sink


async def test_base_time_is_set_after_every_setup(no_leaks: None) -> None:
    slow, fast = Ticker("slow", n=3, setup_ms=700), Ticker("fast", n=3, setup_ms=10)
    pipe = Pipeline(LoopClock())
    e1, e2 = pipe.edge("e1"), pipe.edge("e2")
    pipe.add(slow, outputs={"out": e1})
    pipe.add(fast, outputs={"out": e2})
    s1, s2 = Collector("s1"), Collector("s2")
    pipe.add(s1, {"in": e1})
    pipe.add(s2, {"in": e2})
    t0 = LoopClock().now()
    await pipe.run()
    base = pipe.state.base_time
    assert base == t0 + 700 * NS_PER_MS
    assert fast.setup_done_at == t0 + 10 * NS_PER_MS  # setups ran concurrently
    assert min(fast.stamps + slow.stamps) >= base  # nothing stamped before the handshake
    assert len(s1.packets) == len(s2.packets) == 3


async def test_drain_processes_everything_in_flight(no_leaks: None) -> None:
    src = Ticker()
    pipe, sink = linear(src)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(pipe.run())
        await asyncio.sleep(1.0)
        pipe.drain()
    assert task.done()
    assert not pipe.state.aborted
    assert sink.payloads() == list(range(len(src.stamps)))
    assert 49 <= len(src.stamps) <= 51
    assert pipe.state.phase == "done"


async def test_abort_cancels_everything_at_once(no_leaks: None) -> None:
    class Stuck:
        name = "stuck"

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            async for _ in ctx.input():
                await ctx.clock.sleep(3600 * 10**9)  # a wedged consumer

    pipe = Pipeline(LoopClock())
    a = pipe.edge("a", 2)
    pipe.add(Ticker(), outputs={"out": a})
    pipe.add(Stuck(), {"in": a})
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(pipe.run())
        await asyncio.sleep(1.0)
        t_abort = LoopClock().now()
        pipe.abort()
    assert task.done()
    assert pipe.state.aborted
    assert LoopClock().now() == t_abort  # abort does not wait for anything


async def test_abort_during_setup(no_leaks: None) -> None:
    src = Ticker(setup_ms=3_600_000)
    pipe, _ = linear(src)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(pipe.run())
        await asyncio.sleep(1.0)
        pipe.abort()
    assert task.done()
    assert src.setup_done_at is None
    assert src.stamps == []
    assert pipe.state.base_time is not None


@pytest.mark.parametrize("phase", ["setup", "run"])
async def test_failing_stage_stops_pipeline_and_is_named(phase: str, no_leaks: None) -> None:
    pipe = Pipeline(LoopClock())
    a, b = pipe.edge("a"), pipe.edge("b")
    pipe.add(Ticker(), outputs={"out": a})  # would run forever
    pipe.add(Failing("decoder", phase, after=5), {"in": a}, {"out": b})
    sink = Collector()
    pipe.add(sink, {"in": b})
    with pytest.raises(StageFailed) as info:
        await pipe.run()
    assert info.value.stage == "decoder"
    assert info.value.phase == phase
    assert isinstance(info.value.__cause__, ValueError)
    assert "decoder" in str(info.value)
    if phase == "run":
        assert sink.ended.is_set()
        assert sink.error is not None
        assert "bad packet 6" in sink.error


async def test_consumer_that_returns_early_does_not_stall_the_producer(no_leaks: None) -> None:
    class TakeTwo:
        name = "take2"

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            for _ in range(2):
                await ctx.input().get()

    pipe = Pipeline(LoopClock())
    a = pipe.edge("a", 1, Policy.BLOCK)
    pipe.add(Ticker(n=20), outputs={"out": a})
    pipe.add(TakeTwo(), {"in": a})
    await asyncio.wait_for(pipe.run(), 10)
    assert a.stats().dropped >= 17


async def test_wiring_errors() -> None:
    pipe = Pipeline(LoopClock())
    pipe.edge("a")
    with pytest.raises(ValueError, match="already exists"):
        pipe.edge("a")
    pipe.add(Collector("x"))
    with pytest.raises(ValueError, match="already exists"):
        pipe.add(Collector("x"))
    pipe2 = Pipeline(LoopClock())
    pipe2.add(Collector("needs-input"))
    with pytest.raises(StageFailed, match="no input port 'in'"):
        await pipe2.run()
    with pytest.raises(RuntimeError, match="runs once"):
        await pipe2.run()


async def test_stage_outputs_get_end_of_stream_when_stage_returns(no_leaks: None) -> None:
    pipe, sink = linear(Ticker(n=4))
    await pipe.run()
    assert sink.payloads() == [0, 1, 2, 3]
    assert all(not isinstance(item, EndOfStream) for item in sink.items)
    assert sink.ended.is_set()
    assert all(stats.closed for stats in pipe.edge_stats())


async def test_failure_inside_a_stage_task_group_is_unwrapped(no_leaks: None) -> None:
    class Fanned:
        name = "fanned"

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            async def boom() -> None:
                await ctx.clock.sleep(NS_PER_MS)
                raise KeyError("lost")

            async with asyncio.TaskGroup() as group:
                group.create_task(boom())
                group.create_task(ctx.clock.sleep(10**12))

    pipe = Pipeline(LoopClock())
    out = pipe.edge("out")
    pipe.add(Fanned(), outputs={"out": out})
    sink = Collector()
    pipe.add(sink, {"in": out})
    with pytest.raises(StageFailed) as info:
        await pipe.run()
    assert isinstance(info.value.error, KeyError)
    assert isinstance(info.value.__cause__, KeyError)
    assert sink.error == "KeyError('lost')"


async def test_cancelling_the_run_task_cancels_everything(no_leaks: None) -> None:
    pipe, sink = linear(Ticker())
    task = asyncio.ensure_future(pipe.run())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipe.state.phase == "done"
    assert not pipe.state.aborted
    assert not sink.ended.is_set()  # the sink was cancelled too, not drained
    assert all(stats.closed for stats in pipe.edge_stats())
