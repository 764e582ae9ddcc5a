"""Stages: the protocol, the ports and the context a stage runs in.

A stage is an async loop over its input ports writing its output ports. The framework
measures it at the ports (not inside the stage): the time from the latest input received to
each output put (stage latency), and ``now - pts`` of every output packet (end-to-end from
capture). Packets that carry a ``lineage`` id mark ``"<stage>.<port>"`` in the lineage.

Function stages (a synchronous ``fn(packet)`` as a stage, alone or fused into a chain) live
in :mod:`streamkit.core.function_stage`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from streamkit.core.clock import Clock, Nanos, wait_any
from streamkit.core.edge import Edge
from streamkit.core.metrics import Histogram, MetricsRegistry
from streamkit.core.packet import Control, EndOfStream, Packet

__all__ = ["InPort", "OutPort", "Source", "Stage", "StageContext"]


@runtime_checkable
class Stage(Protocol):
    """What the pipeline runs.

    ``setup`` loads models and opens devices; it runs before the pipeline sets the clock's
    base time (readiness handshake), so no packet is stamped while a model is loading.
    ``run`` is the stage's loop; when it returns, the pipeline closes the stage's outputs
    (end of stream in band). Exceptions stop the pipeline with an error naming the stage.
    """

    name: str

    async def setup(self, ctx: StageContext) -> None: ...

    async def run(self, ctx: StageContext) -> None: ...


class Source(Stage, Protocol):
    """A stage with no inputs: ``outputs`` names the ports it writes (``"audio"``,
    ``"video"``), so the code that wires it knows which edges to give it."""

    outputs: tuple[str, ...]


class InPort:
    """A stage's view of an input edge; records when each item arrived."""

    def __init__(self, ctx: StageContext, edge: Edge[Any]) -> None:
        self._ctx = ctx
        self.edge = edge

    async def get(self) -> Packet[Any] | Control:
        item = await self.edge.get()
        self._ctx.last_input_at = self._ctx.clock.now()
        return item

    def get_nowait(self) -> Packet[Any] | Control | None:
        item = self.edge.get_nowait()
        if item is not None:
            self._ctx.last_input_at = self._ctx.clock.now()
        return item

    def __aiter__(self) -> InPort:
        return self

    async def __anext__(self) -> Packet[Any] | Control:
        item = await self.get()
        if isinstance(item, EndOfStream):
            raise StopAsyncIteration
        return item


class OutPort:
    """A stage's view of an output edge; measures latency at every put."""

    def __init__(self, ctx: StageContext, port: str, edge: Edge[Any]) -> None:
        self._ctx = ctx
        self.edge = edge
        self._event = f"{ctx.name}.{port}"
        metrics = ctx.metrics
        self._stage_hist: Histogram = metrics.histogram(f"stage.{ctx.name}.latency")
        self._e2e_hist: Histogram = metrics.histogram(f"e2e.{ctx.name}.{port}")

    def _measure(self, item: Packet[Any] | Control) -> None:
        if not isinstance(item, Packet):
            return
        ctx = self._ctx
        now = ctx.clock.now()
        if ctx.last_input_at is not None:
            self._stage_hist.observe(now - ctx.last_input_at)
        self._e2e_hist.observe(now - item.pts)
        if item.lineage is not None:
            ctx.metrics.lineage.mark(item.lineage, self._event, now)

    async def put(self, item: Packet[Any] | Control) -> None:
        self._measure(item)
        await self.edge.put(item)

    def put_nowait(self, item: Packet[Any] | Control) -> bool:
        self._measure(item)
        return self.edge.put_nowait(item)

    def close(self, error: str | None = None) -> None:
        self.edge.close(error)


@dataclass
class StageContext:
    """What a running stage sees: its ports, the shared clock and the metrics registry.

    ``base_time`` is the shared-clock time (ns) the pipeline started at, set after every
    stage's ``setup`` finished; sources stamp file media as ``base_time + media_pts``.
    ``drain_requested`` is the pipeline's event, set when it drains: sources should finish
    and return (``stopping``, ``wait_stopping``). The port views are made on first use.
    """

    name: str
    clock: Clock
    metrics: MetricsRegistry
    inputs: Mapping[str, Edge[Any]] = field(default_factory=dict)
    outputs: Mapping[str, Edge[Any]] = field(default_factory=dict)
    base_time: Nanos = 0
    last_input_at: Nanos | None = None
    drain_requested: asyncio.Event | None = None
    _in_ports: dict[str, InPort] = field(default_factory=dict, init=False, repr=False)
    _out_ports: dict[str, OutPort] = field(default_factory=dict, init=False, repr=False)

    def input(self, port: str = "in") -> InPort:
        if port not in self._in_ports:
            if port not in self.inputs:
                raise KeyError(f"stage {self.name!r} has no input port {port!r}")
            self._in_ports[port] = InPort(self, self.inputs[port])
        return self._in_ports[port]

    def output(self, port: str = "out") -> OutPort:
        if port not in self._out_ports:
            if port not in self.outputs:
                raise KeyError(f"stage {self.name!r} has no output port {port!r}")
            self._out_ports[port] = OutPort(self, port, self.outputs[port])
        return self._out_ports[port]

    def has_output(self, port: str) -> bool:
        return port in self.outputs

    @property
    def stopping(self) -> bool:
        return self.drain_requested is not None and self.drain_requested.is_set()

    async def wait_stopping(self) -> None:
        """Wait until the pipeline asks sources to drain (at once outside a pipeline)."""
        if self.drain_requested is not None:
            await self.drain_requested.wait()

    async def wait_or_stopping(self, event: asyncio.Event) -> None:
        """Wait until ``event`` is set or the pipeline asks sources to drain (for sources
        woken by a capture thread)."""
        drain = () if self.drain_requested is None else (self.drain_requested,)
        await wait_any(event, *drain)


