"""Stage adapters for apps: watch a source's packets on their way out, and a callback sink.

:class:`TappedSource` wraps any source stage: every packet the source puts on an output port
first goes through ``tap(port, packet)``, which may return it unchanged, a replacement (e.g.
muted audio) or ``None`` (not forwarded). The source keeps its name, ports and metrics, so
the pipeline cannot tell the difference. Used by the demo (camera view, mute, record) and by
``streamkit replay --out`` (recording the replayed media next to the events).

:class:`CallbackSink` is a sink stage (input ``in``) calling ``on_item(now, item)``.

Callbacks run on the event loop's thread and must not block for long.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from streamkit.core.clock import Nanos
from streamkit.core.edge import Edge
from streamkit.core.packet import Control, Packet
from streamkit.core.stage import Source, StageContext

__all__ = ["CallbackSink", "Tap", "TappedSource"]

Tap = Callable[[str, Packet[Any]], "Packet[Any] | None"]


class _TapEdge(Edge[Any]):
    """Producer-side proxy of a real edge: packets pass through ``tap`` first."""

    def __init__(self, port: str, real: Edge[Any], tap: Tap) -> None:
        super().__init__(real.name, real.capacity, real.policy)
        self._port = port
        self._real = real
        self._tap = tap

    @property
    def closed(self) -> bool:
        return self._real.closed

    def _through(self, item: Packet[Any] | Control) -> Packet[Any] | Control | None:
        if isinstance(item, Packet):
            return self._tap(self._port, item)
        return item

    def put_nowait(self, item: Packet[Any] | Control) -> bool:
        passed = self._through(item)
        return True if passed is None else self._real.put_nowait(passed)

    async def put(self, item: Packet[Any] | Control) -> None:
        passed = self._through(item)
        if passed is not None:
            await self._real.put(passed)

    def close(self, error: str | None = None) -> None:
        self._real.close(error)


class TappedSource:
    """``inner`` with every output packet passed through ``tap`` (see the module docstring)."""

    def __init__(self, inner: Source, tap: Tap) -> None:
        self.inner = inner
        self.tap = tap
        self.name = inner.name
        self.outputs: tuple[str, ...] = inner.outputs
        self._ctx: StageContext | None = None

    def _inner_ctx(self, ctx: StageContext) -> StageContext:
        if self._ctx is None:
            outputs = {p: _TapEdge(p, e, self.tap) for p, e in ctx.outputs.items()}
            self._ctx = dataclasses.replace(ctx, outputs=outputs)
        self._ctx.base_time = ctx.base_time
        return self._ctx

    async def setup(self, ctx: StageContext) -> None:
        await self.inner.setup(self._inner_ctx(ctx))

    async def run(self, ctx: StageContext) -> None:
        await self.inner.run(self._inner_ctx(ctx))


class CallbackSink:
    """Sink stage: ``on_item(now, item)`` for every packet and control event on ``in``."""

    def __init__(
        self, on_item: Callable[[Nanos, Packet[Any] | Control], None], name: str = "sink"
    ) -> None:
        self.name = name
        self.on_item = on_item

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input("in"):
            self.on_item(ctx.clock.now(), item)
