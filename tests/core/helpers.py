"""Shared test helpers for the core tests: packet series and a slow sink."""

from __future__ import annotations

from streamkit.core.clock import NS_PER_MS
from streamkit.core.operators import Collector
from streamkit.core.packet import Packet
from streamkit.core.stage import StageContext


def packets(stream: str, n: int, step_ms: int = 20) -> list[Packet[int]]:
    """``n`` packets of ``stream`` with payload = seq, one every ``step_ms`` from pts 0."""
    return [Packet(stream, i, i * step_ms * NS_PER_MS, step_ms * NS_PER_MS, i) for i in range(n)]


class SlowSink(Collector):
    """A collector that takes ``ms`` of (virtual) time per item: a slow consumer."""

    def __init__(self, name: str, ms: int) -> None:
        super().__init__(name)
        self.ms = ms

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input():
            await ctx.clock.sleep(self.ms * NS_PER_MS)
            self.items.append(item)
        self.ended.set()
