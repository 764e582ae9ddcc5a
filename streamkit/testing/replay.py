"""Replay harness: run a pipeline on a recorded session on virtual time and return its trace.

The pipeline comes from a factory with the shared-contract signature::

    factory(source, sink, metrics) -> (Pipeline, controls)

where ``source`` is a :class:`~streamkit.sources.replay.ReplaySource` (ports ``audio`` /
``video``), ``sink`` a :class:`TraceSink` (input port ``in``, receives ``Packet[Event]``) and
``metrics`` the registry the pipeline must record into. For the full assistant::

    trace = run_replay(lambda src, sink, m: assistant.build(cfg, models, src, sink, metrics=m),
                       "session.mcap")

:func:`replay` is the coroutine (use it inside a ``@pytest.mark.looptime`` test);
:func:`run_replay` runs it on a fresh virtual-time loop (looptime) and returns when the
session has been played out, typically in milliseconds of wall time. All times in a
:class:`Trace` are relative to the pipeline's ``base_time``, so traces of two runs compare equal
when the pipeline is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from streamkit.core.clock import Nanos
from streamkit.core.events import ResponseDelta, ResponseDone, TranscriptFinal
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage, StageContext
from streamkit.record.mcap import Session
from streamkit.sources.replay import ReplaySource, Timing

__all__ = [
    "PipelineFactory",
    "Trace",
    "TraceEvent",
    "TraceSink",
    "replay",
    "run_on_virtual_loop",
    "run_replay",
]

PipelineFactory = Callable[[Stage, Stage, MetricsRegistry], tuple[Pipeline, Any]]
"""``(source, sink, metrics) -> (pipeline, controls)``."""

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One event as the sink received it; times in ns relative to ``base_time``."""

    t: Nanos
    stream: str
    seq: int
    pts: Nanos
    lineage: str | None
    payload: Any


@dataclass
class Trace:
    """What a replayed pipeline produced: events in arrival order, metrics, lineage."""

    events: list[TraceEvent]
    metrics: dict[str, Any]
    lineage: dict[str, dict[str, Nanos]]
    base_time: Nanos = 0
    duration: Nanos = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def payloads(self, kind: type | tuple[type, ...] | None = None) -> list[Any]:
        """Payloads in arrival order, optionally only those of type ``kind``."""
        return [e.payload for e in self.events if kind is None or isinstance(e.payload, kind)]

    def transcript(self) -> str:
        """Concatenated final transcript text, in order."""
        return " ".join(f.text.strip() for f in self.payloads(TranscriptFinal) if f.text.strip())

    def answers(self) -> dict[str, str]:
        """Answer text per utterance id: ``ResponseDone.text``, else the joined deltas."""
        done = {d.utterance_id: d.text for d in self.payloads(ResponseDone)}
        deltas: dict[str, str] = {}
        for d in self.payloads(ResponseDelta):
            deltas[d.utterance_id] = deltas.get(d.utterance_id, "") + d.text
        return {**deltas, **done}

    def to_json(self) -> str:
        """Canonical JSON of the whole trace (for comparing runs and storing golden traces)."""
        events = [
            {"t": e.t, "stream": e.stream, "seq": e.seq, "pts": e.pts, "lineage": e.lineage,
             "payload": msgspec.to_builtins(e.payload)}
            for e in self.events
        ]
        doc = {"events": events, "metrics": self.metrics, "lineage": self.lineage}
        return json.dumps(doc, sort_keys=True, default=repr)


class TraceSink:
    """Sink stage (input ``in``) that keeps every packet with its arrival time."""

    def __init__(self, name: str = "sink") -> None:
        self.name = name
        self.received: list[tuple[Nanos, Packet[Any]]] = []
        self.base_time: Nanos = 0

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        self.base_time = ctx.base_time
        async for item in ctx.input():
            if isinstance(item, Packet):
                self.received.append((ctx.clock.now(), item))


async def replay(
    factory: PipelineFactory,
    session: str | Path | Session,
    *,
    speed: float = 1.0,
    timing: Timing = "arrival",
    source: ReplaySource | None = None,
) -> Trace:
    """Build the pipeline around a replay source and a trace sink, run it, return the trace.

    Runs on whatever loop is current: under looptime it takes virtual time only.
    """
    src = source if source is not None else ReplaySource(session, speed=speed, timing=timing)
    sink = TraceSink()
    metrics = MetricsRegistry()
    pipeline, _controls = factory(src, sink, metrics)
    await pipeline.run()
    base = pipeline.state.base_time or 0
    end = pipeline.clock.now()
    events = [
        TraceEvent(t - base, p.stream, p.seq, p.pts - base, p.lineage, p.payload)
        for t, p in sink.received
    ]
    snapshot = pipeline.metrics.snapshot()
    lineage = {
        uid: {ev: t - base for ev, t in marks.items()}
        for uid, marks in snapshot.pop("lineage").items()
    }
    return Trace(events, snapshot, lineage, base_time=base, duration=end - base)


def run_on_virtual_loop(coro: Coroutine[Any, Any, R], *, noop_cycles: int = 1) -> R:
    """Run ``coro`` to completion on a fresh virtual-time loop (:mod:`streamkit.testing.virtual`).

    ``noop_cycles=1`` jumps to the next timer as soon as nothing is runnable (fastest; model
    calls must charge virtual time, as ``ModelSlot`` does in ``"virtual"`` mode).
    """
    from streamkit.testing.virtual import run_virtual

    return run_virtual(coro, noop_cycles=noop_cycles)


def run_replay(
    factory: PipelineFactory,
    session: str | Path | Session,
    *,
    speed: float = 1.0,
    timing: Timing = "arrival",
    noop_cycles: int = 1,
) -> Trace:
    """Synchronous :func:`replay` on a fresh virtual-time loop (call from sync code only)."""
    return run_on_virtual_loop(
        replay(factory, session, speed=speed, timing=timing), noop_cycles=noop_cycles
    )
