"""The aligner as a pipeline stage: a thin async adapter around :class:`AlignerCore`.

Ports:

- inputs: one per stream, named after it (``"audio"``, ``"video"``, …). A declared stream
  whose input is not connected is ended at once.
- ``"windows"`` (optional): ``Packet[AlignedWindow]`` (stream ``"windows"``, pts = window
  start, duration = window length), in order.
- pass-through (optional): an output named after a stream (``"audio"`` → ASR with ``BLOCK``,
  ``"video"`` → vision with ``LATEST``) re-emits that stream's packets window by window: late
  packets first, then the window's packets in pts order, with its gaps in place. For a stream
  delivered in order upstream, the pass-through keeps that order; nothing is dropped or
  duplicated by the stage (only a ``LATEST``/drop edge downstream may drop).

Timing: one reader task per input pushes into the core (no await between receive and push)
and wakes the emitter; the emitter polls the core and sleeps on the shared clock until the
core's next deadline or the next arrival, whichever comes first. Pass-through puts may block
(``BLOCK`` edges): while they do, readers keep feeding the bounded core (``max_buffered``).
``Flush`` items are forwarded to every output at once. Metrics (``align.<name>.*``):
``added_latency`` histogram (emission − window end), ``windows``/``late.<stream>`` counters,
``missing`` counter and ``buffered`` gauge. :meth:`AlignStage.nearest` answers nearest-frame
queries from other stages in the same loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from streamkit.align.core import AlignedWindow, AlignerConfig, AlignerCore
from streamkit.core.clock import Nanos, wait_any
from streamkit.core.packet import EndOfStream, Flush, Gap, Packet
from streamkit.core.stage import StageContext

__all__ = ["AlignStage"]


class AlignStage:
    """Aligns ``streams`` into windows (see the module docstring).

    Args:
        streams: stream / input port names.
        config: aligner settings; ``origin=None`` → windows start at the pipeline's base time.
        name: stage name.
    """

    def __init__(
        self,
        streams: Iterable[str] = ("audio", "video"),
        config: AlignerConfig | None = None,
        *,
        name: str = "align",
    ) -> None:
        self.name = name
        self.streams = tuple(streams)
        self.config = config if config is not None else AlignerConfig()
        self.core: AlignerCore | None = None
        self._wake = asyncio.Event()
        self._seq = 0

    @property
    def outputs(self) -> tuple[str, ...]:
        return ("windows", *self.streams)

    async def setup(self, ctx: StageContext) -> None:
        return None

    def nearest(self, stream: str, t: Nanos) -> Packet[Any] | None:
        """The remembered packet of ``stream`` nearest to shared time ``t`` (or None)."""
        return None if self.core is None else self.core.nearest(stream, t)

    async def run(self, ctx: StageContext) -> None:
        config = self.config
        if config.origin is None:
            config = replace(config, origin=ctx.base_time)
        core = self.core = AlignerCore(self.streams, config)
        for stream in self.streams:
            if stream not in ctx.inputs:
                core.end(stream)
        async with asyncio.TaskGroup() as group:
            for stream in self.streams:
                if stream in ctx.inputs:
                    group.create_task(self._read(ctx, core, stream), name=f"{self.name}:{stream}")
            group.create_task(self._emit_loop(ctx, core), name=f"{self.name}:emit")

    async def _read(self, ctx: StageContext, core: AlignerCore, stream: str) -> None:
        port = ctx.input(stream)
        while True:
            item = await port.get()
            now = ctx.clock.now()
            if isinstance(item, Packet):
                core.push(item if item.stream == stream else replace(item, stream=stream), now)
            elif isinstance(item, Gap):
                core.gap(item if item.stream == stream else replace(item, stream=stream), now)
            elif isinstance(item, Flush):
                for out in ctx.outputs:
                    await ctx.output(out).put(item)
            elif isinstance(item, EndOfStream):
                core.end(stream)
                self._wake.set()
                return
            self._wake.set()

    async def _emit_loop(self, ctx: StageContext, core: AlignerCore) -> None:
        metrics = ctx.metrics
        added = metrics.histogram(f"align.{self.name}.added_latency")
        buffered = metrics.gauge(f"align.{self.name}.buffered")
        while True:
            self._wake.clear()
            now = ctx.clock.now()
            for window in core.poll(now):
                added.observe(max(0, window.emitted_at - window.end))
                await self._emit(ctx, window)
            buffered.set(core.buffered)
            if core.all_ended and core.buffered == 0:
                return
            deadline = core.next_deadline(ctx.clock.now())
            await wait_any(self._wake, clock=ctx.clock, deadline=deadline)

    async def _emit(self, ctx: StageContext, window: AlignedWindow) -> None:
        metrics = ctx.metrics
        metrics.counter(f"align.{self.name}.windows").inc()
        if window.missing:
            metrics.counter(f"align.{self.name}.missing").inc()
        for packet in window.late:
            metrics.counter(f"align.{self.name}.late.{packet.stream}").inc()
        if ctx.has_output("windows"):
            await ctx.output("windows").put(
                Packet("windows", self._seq, window.start, window.end - window.start, window)
            )
        self._seq += 1
        for stream in self.streams:
            if not ctx.has_output(stream):
                continue
            out = ctx.output(stream)
            for packet in window.late:
                if packet.stream == stream:
                    await out.put(packet)
            items: list[tuple[Nanos, int, Packet[Any] | Gap]] = [
                (p.pts, 1, p) for p in window.stream(stream)
            ]
            items += [(g.start, 0, g) for g in window.gaps if g.stream == stream]
            items.sort(key=lambda e: (e[0], e[1]))
            for _, _, item in items:
                await out.put(item)

