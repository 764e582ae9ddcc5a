from __future__ import annotations

import asyncio

import pytest

from streamkit import LoopClock, Packet, Pipeline, Policy, StageContext, function_stage
from streamkit.core.clock import NS_PER_MS


class Source:
    name = "src"

    def __init__(self, n: int) -> None:
        self.n = n

    async def setup(self, ctx: StageContext) -> None:
        await ctx.clock.sleep(5 * NS_PER_MS)

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output()
        for i in range(self.n):
            await ctx.clock.sleep(20 * NS_PER_MS)
            await out.put(Packet("a", i, ctx.clock.now(), 20 * NS_PER_MS, i))


class Sink:
    name = "sink"

    def __init__(self) -> None:
        self.got: list[int] = []

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input():
            assert isinstance(item, Packet)
            self.got.append(item.payload)


@pytest.mark.looptime
async def test_source_to_sink_virtual_time() -> None:
    pipe = Pipeline(LoopClock())
    a = pipe.edge("a", 4, Policy.BLOCK)
    b = pipe.edge("b", 4, Policy.BLOCK)
    sink = Sink()
    pipe.add(Source(50), outputs={"out": a})
    pipe.add(function_stage("double", lambda p: p.derive(p.payload * 2)), {"in": a}, {"out": b})
    pipe.add(sink, inputs={"in": b})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await pipe.run()
    assert sink.got == [2 * i for i in range(50)]
    assert loop.time() - t0 == pytest.approx(1.005, abs=1e-6)
