"""Function stages: synchronous packet functions run as a stage, alone or fused.

Function stages need no subclass: :func:`function_stage` wraps a synchronous
``fn(packet) -> packet | iterable of packets | None``; :func:`chain` fuses several of them into
one task, so a chain of N functions costs N calls, not N queue hops.

**Inline (push-mode) function stages** — opt-in, ``function_stage(..., inline=True)`` or
``chain(..., inline=True)``: the stage attaches itself to its ``in`` edge (which must be
``BLOCK``) as an :class:`~streamkit.core.edge.InlineConsumer`, so a producer's ``await put`` on
the empty edge runs the functions right there, in the producer's task, and puts their
outputs on the stage's ``out`` edge (awaiting a full ``BLOCK`` edge is backpressure on that
producer). Source → inline chain → inline sink thus costs function calls, no event-loop
iteration. Whenever the edge holds items, the stage is busy or producers wait, ``put``
queues instead and the stage's own task processes the queue, so order (packets and control
events) is kept and every edge stays bounded. It is opt-in, not automatic, because it is not
equivalent: the producer's task spends the functions' CPU time and waits on the stage's
output edge (instead of running ahead by the input edge's capacity). Metrics are the same
(stage latency, e2e and lineage at the ``out`` port, sampled per-function histograms); an
exception in an inline function fails *this* stage (:class:`~streamkit.core.pipeline.StageFailed`
names it, not the producer, whose ``put`` returns). A function stage with no ``out`` port
is a sink: what its functions return is discarded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from streamkit.core.metrics import Histogram
from streamkit.core.packet import Control, EndOfStream, Packet
from streamkit.core.stage import OutPort, StageContext

__all__ = ["DEFAULT_TIME_EVERY", "FunctionChain", "PacketFn", "chain", "function_stage"]

DEFAULT_TIME_EVERY = 8
"""Function stages time one packet in this many per function (see :class:`FunctionChain`)."""

PacketFn = Callable[[Packet[Any]], "Packet[Any] | Iterable[Packet[Any]] | None"]
"""A synchronous function stage: one packet in, zero or more packets out."""


class FunctionChain:
    """Synchronous packet functions fused into one stage (one task, no inner queues).

    Each function's call time is recorded as ``stage.<chain>.<fn>.latency`` (ns on the shared
    clock: real time on a real loop; 0 on a virtual-time loop, where synchronous code takes
    no time). ``time_every=N`` times one packet in N (1: every packet; 0: never; default 8):
    for cheap functions the clock reads cost more than the functions, so per-function
    histograms are sampled. The stage as a whole is still measured on every packet at its
    output port (``stage.<chain>.latency``, ``e2e.<chain>.out``). Control events pass
    through unchanged. With no ``out`` port the stage is a sink (results discarded).

    ``inline=True``: run in the producer's task when possible (see the module docstring).
    """

    def __init__(
        self,
        name: str,
        fns: list[tuple[str, PacketFn]],
        time_every: int = DEFAULT_TIME_EVERY,
        *,
        inline: bool = False,
    ) -> None:
        if time_every < 0:
            raise ValueError(f"time_every must be ≥ 0, got {time_every}")
        self.name = name
        self.fns = fns
        self.time_every = time_every
        self.inline = inline
        self._count = 0
        # inline mode: set in setup
        self._ctx: StageContext | None = None
        self._out: OutPort | None = None
        self._hists: list[Histogram] = []
        self._pushing = False  # a producer's task is running the functions now
        self._held = False  # the stage's own task holds an item taken from the queue
        self._idle: asyncio.Future[None] | None = None  # the task waits for a push to end
        self._task: asyncio.Task[Any] | None = None
        self._failure: Exception | None = None

    async def setup(self, ctx: StageContext) -> None:
        if not self.inline:
            return
        self._pushing = self._held = False
        self._failure = None
        self._ctx = ctx
        self._out = ctx.output() if ctx.has_output("out") else None
        self._hists = self._histograms(ctx)
        ctx.input().edge.attach_inline(self)

    def _histograms(self, ctx: StageContext) -> list[Histogram]:
        return [
            ctx.metrics.histogram(f"stage.{self.name}.{fn_name}.latency") for fn_name, _ in self.fns
        ]

    # -- inline consumer (called from producers' tasks) ----------------------------------

    def ready(self) -> bool:
        return not self._pushing and not self._held and self._failure is None

    async def push(self, item: Packet[Any] | Control) -> None:
        ctx = self._ctx
        assert ctx is not None
        out = self._out
        self._pushing = True
        try:
            if out is None:  # a sink: nothing is measured at an output, no clock read
                if isinstance(item, Packet):
                    self._apply_with([item], ctx, self._hists)
            else:
                ctx.last_input_at = ctx.clock.now()
                if isinstance(item, Packet):
                    for packet in self._apply_with([item], ctx, self._hists):
                        await out.put(packet)
                else:
                    await out.put(item)
        except Exception as error:  # this stage failed, not the producer: its task raises it
            if self._failure is None:
                self._failure = error
                task = self._task
                if task is not None and not task.done() and task is not asyncio.current_task():
                    task.cancel()
        finally:
            self._pushing = False
            idle = self._idle
            if idle is not None and not idle.done():
                idle.set_result(None)

    async def _handle(
        self,
        item: Packet[Any] | Control,
        ctx: StageContext,
        out: OutPort | None,
        hists: list[Histogram],
    ) -> None:
        if not isinstance(item, Packet):
            if out is not None:
                await out.put(item)
            return
        for packet in self._apply_with([item], ctx, hists):
            if out is not None:
                await out.put(packet)

    async def _run_inline(self, ctx: StageContext) -> None:
        """The queue side of an inline stage: items that could not be pushed, in order."""
        inport = ctx.input()
        self._task = asyncio.current_task()
        try:
            if self._failure is not None:
                raise self._failure
            while True:
                item = await inport.get()
                self._held = True
                try:
                    while self._pushing:  # a push started before this item was queued
                        self._idle = asyncio.get_running_loop().create_future()
                        await self._idle
                    if self._failure is not None:
                        raise self._failure
                    if isinstance(item, EndOfStream):
                        return
                    await self._handle(item, ctx, self._out, self._hists)
                except Exception as error:
                    if self._failure is None:
                        self._failure = error  # no more pushes into a failed stage
                    raise
                finally:
                    self._held = False
        except asyncio.CancelledError:
            if self._failure is not None and self._task is not None:
                self._task.uncancel()
                raise self._failure from None
            raise
        finally:
            inport.edge.attach_inline(None)
            self._task = None

    def _apply(self, packets: list[Packet[Any]], ctx: StageContext) -> list[Packet[Any]]:
        hists = [
            ctx.metrics.histogram(f"stage.{self.name}.{fn_name}.latency") for fn_name, _ in self.fns
        ]
        return self._apply_with(packets, ctx, hists)

    def _apply_with(
        self, packets: list[Packet[Any]], ctx: StageContext, hists: list[Histogram]
    ) -> list[Packet[Any]]:
        every = self.time_every
        timed = every > 0 and self._count % every == 0
        self._count += 1
        if not timed and len(packets) == 1:
            # Fast path: one packet in, each function returns one packet (no lists).
            packet = packets[0]
            for index, (_, fn) in enumerate(self.fns):
                result = fn(packet)
                if isinstance(result, Packet):
                    packet = result
                elif result is None:
                    return []
                else:
                    return self._run_fns(list(result), index + 1, ctx, hists, timed=False)
            return [packet]
        return self._run_fns(packets, 0, ctx, hists, timed=timed)

    def _run_fns(
        self,
        packets: list[Packet[Any]],
        start: int,
        ctx: StageContext,
        hists: list[Histogram],
        *,
        timed: bool,
    ) -> list[Packet[Any]]:
        now = ctx.clock.now
        mark = now() if timed else 0
        for (_, fn), hist in zip(self.fns[start:], hists[start:], strict=True):
            produced: list[Packet[Any]] = []
            for packet in packets:
                result = fn(packet)
                if timed:  # one clock read per call: each call ends where the next starts
                    done = now()
                    hist.observe(done - mark)
                    mark = done
                if result is None:
                    continue
                if isinstance(result, Packet):
                    produced.append(result)
                else:
                    produced.extend(result)
            if not produced:
                return produced
            packets = produced
        return packets

    async def run(self, ctx: StageContext) -> None:
        if self.inline:
            await self._run_inline(ctx)
            return
        inport = ctx.input()
        out = ctx.output() if ctx.has_output("out") else None
        hists = self._histograms(ctx)
        async for item in inport:
            if out is None:
                if isinstance(item, Packet):
                    self._apply_with([item], ctx, hists)
                continue
            if not isinstance(item, Packet):
                await out.put(item)
                continue
            for packet in self._apply_with([item], ctx, hists):
                await out.put(packet)

    def __or__(self, other: FunctionChain) -> FunctionChain:
        return FunctionChain(
            f"{self.name}|{other.name}", self.fns + other.fns, self.time_every, inline=self.inline
        )


def function_stage(
    name: str, fn: PacketFn, *, time_every: int = DEFAULT_TIME_EVERY, inline: bool = False
) -> FunctionChain:
    """Wrap a synchronous packet function as a stage (``in`` → ``out``; ``inline``: push
    mode, see the module docstring)."""
    return FunctionChain(name, [(name, fn)], time_every, inline=inline)


def chain(
    name: str,
    *stages: FunctionChain,
    time_every: int = DEFAULT_TIME_EVERY,
    inline: bool = False,
) -> FunctionChain:
    """Fuse function stages into one stage named ``name`` (one task; see FunctionChain).

    ``inline=True`` also removes the hop into the chain (push mode, see the module
    docstring); the default keeps the chain in its own task behind its input edge."""
    fns: list[tuple[str, PacketFn]] = []
    for stage in stages:
        fns.extend(stage.fns)
    return FunctionChain(name, fns, time_every, inline=inline)
