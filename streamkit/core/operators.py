"""Generic stages for wiring: fan-out (:class:`Tee`), fan-in (:class:`Merge`), sources and sinks.

- :class:`Tee` copies every item of its input ``"in"`` to several output ports. Each output
  edge keeps its own policy: a packet is offered to every output without waiting first, and
  only the outputs that are full *and* ``BLOCK`` are then awaited, so a ``LATEST`` or
  ``DROP_*`` output never holds back a ``BLOCK`` one (nor the reverse). Payloads are shared,
  not copied: consumers must treat them as read-only.
- :class:`Merge` forwards items from several input ports to ``"out"`` in arrival order and
  ends when every input has ended. Per-input ``EndOfStream`` is absorbed; gaps and flushes
  pass through.
- :class:`IterSource` emits packets from an iterable, optionally paced by their ``pts``
  (``base_time + pts`` on the shared clock), and stops early on ``drain``.
- :class:`Collector` is a sink that keeps everything it receives (tests, tools).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from streamkit.core.edge import Policy
from streamkit.core.packet import Control, EndOfStream, Packet
from streamkit.core.stage import OutPort, StageContext

__all__ = ["Collector", "IterSource", "Merge", "Tee"]


class Tee:
    """One input ``"in"`` → every port in ``ports`` (each edge with its own policy).

    Args:
        name: stage name.
        ports: output port names (≥ 1), wired by :meth:`Pipeline.add`.
        accept: optional per-port filters: a port gets only the packets its predicate
            accepts (controls — Flush, Gap, EndOfStream — always pass).
    """

    def __init__(
        self,
        name: str,
        ports: Sequence[str],
        accept: Mapping[str, Callable[[Packet[Any]], bool]] | None = None,
    ) -> None:
        if not ports:
            raise ValueError(f"tee {name!r} needs at least one output port")
        if len(set(ports)) != len(ports):
            raise ValueError(f"tee {name!r}: duplicate output ports in {list(ports)}")
        self.name = name
        self.ports = tuple(ports)
        self.outputs = self.ports
        self.accept = dict(accept or {})
        if set(self.accept) - set(self.ports):
            raise ValueError(f"tee {name!r}: filters for unknown ports {sorted(self.accept)}")

    async def setup(self, ctx: StageContext) -> None:
        for port in self.ports:
            ctx.output(port)  # fail at setup, not mid-stream, if a port is not wired

    async def run(self, ctx: StageContext) -> None:
        outs = [(ctx.output(port), self.accept.get(port)) for port in self.ports]
        async for item in ctx.input():
            waiting: list[OutPort] = []
            for out, accept in outs:
                if accept is not None and isinstance(item, Packet) and not accept(item):
                    continue
                if not out.put_nowait(item) and out.edge.policy is Policy.BLOCK:
                    waiting.append(out)
            for out in waiting:
                await out.edge.put(item)


class Merge:
    """Every port in ``ports`` → ``"out"``, in arrival order; ends when all inputs ended.

    Args:
        name: stage name.
        ports: input port names (≥ 1).
    """

    def __init__(self, name: str, ports: Sequence[str]) -> None:
        if not ports:
            raise ValueError(f"merge {name!r} needs at least one input port")
        self.name = name
        self.ports = tuple(ports)

    async def setup(self, ctx: StageContext) -> None:
        for port in self.ports:
            ctx.input(port)
        ctx.output()

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output()
        async with asyncio.TaskGroup() as group:
            for port in self.ports:
                group.create_task(self._forward(ctx, port, out), name=f"{self.name}:{port}")

    @staticmethod
    async def _forward(ctx: StageContext, port: str, out: OutPort) -> None:
        async for item in ctx.input(port):
            await out.put(item)


class IterSource:
    """Emits ``packets`` on ``port`` (default ``"out"``), then returns (end of stream).

    With ``paced=True`` each packet is released at ``base_time + packet.pts`` on the shared
    clock (file or replay media at real-time pace; instantly on a virtual-time loop), and
    stamped with ``pts + base_time`` so it sits on the shared clock. Stops early when the
    pipeline drains. Controls in the iterable are forwarded as they come.
    """

    def __init__(
        self,
        name: str,
        packets: Iterable[Packet[Any] | Control],
        *,
        port: str = "out",
        paced: bool = False,
    ) -> None:
        self.name = name
        self.port = port
        self.outputs = (port,)
        self.paced = paced
        self._packets = packets
        self.sent = 0

    async def setup(self, ctx: StageContext) -> None:
        ctx.output(self.port)

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output(self.port)
        for item in self._packets:
            if ctx.stopping:
                return
            if isinstance(item, Packet) and self.paced:
                pts = ctx.base_time + item.pts
                await ctx.clock.sleep_until(pts)
                item = Packet(
                    item.stream,
                    item.seq,
                    pts,
                    item.duration,
                    item.payload,
                    item.epoch,
                    item.lineage,
                )
            await out.put(item)
            self.sent += 1


class Collector:
    """A sink keeping every item from ``"in"``: ``packets``, ``controls``, ``items`` (both).

    ``ended`` is set once the input ended; ``error`` holds the upstream error text, if any.
    """

    def __init__(self, name: str = "sink") -> None:
        self.name = name
        self.items: list[Packet[Any] | Control] = []
        self.ended = asyncio.Event()
        self.error: str | None = None

    @property
    def packets(self) -> list[Packet[Any]]:
        return [item for item in self.items if isinstance(item, Packet)]

    @property
    def controls(self) -> list[Control]:
        return [item for item in self.items if not isinstance(item, Packet)]

    def payloads(self) -> list[Any]:
        return [packet.payload for packet in self.packets]

    async def setup(self, ctx: StageContext) -> None:
        ctx.input()

    async def run(self, ctx: StageContext) -> None:
        inport = ctx.input()
        while True:
            item = await inport.get()
            if isinstance(item, EndOfStream):
                self.error = item.error
                break
            self.items.append(item)
        self.ended.set()
