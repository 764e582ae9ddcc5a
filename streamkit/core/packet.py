"""Packets and in-band control events.

A :class:`Packet` is the unit that flows on an edge: one stream's payload stamped with its
capture time (``pts``) on the shared clock. ``seq`` increases by one per packet of a stream,
so a hole in ``seq`` reveals a drop upstream. ``epoch`` increases on every flush (for example a
barge-in): consumers discard packets from an older epoch. ``lineage`` carries the utterance id
used for per-utterance latency lineage.

Control events (:class:`Gap`, :class:`Flush`, :class:`EndOfStream`) travel on the same edges
and are never dropped by any edge policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from streamkit.core.clock import Nanos

__all__ = [
    "Control",
    "EndOfStream",
    "Flush",
    "Gap",
    "Item",
    "Packet",
    "SeqTracker",
    "is_control",
]

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True, slots=True)
class Packet(Generic[T]):
    """One timestamped payload of one stream.

    Attributes:
        stream: stream name, e.g. ``"audio"``, ``"video"``, ``"transcript"``.
        seq: per-stream sequence number, +1 per packet; holes mean drops.
        pts: capture time of the payload's first sample/frame on the shared clock (ns).
        duration: time span the payload covers (ns); 0 for instantaneous events.
        payload: the data; its owner is whoever holds the packet (payloads are not copied).
        epoch: flush generation the packet belongs to.
        lineage: utterance id for latency lineage, or ``None``.
    """

    stream: str
    seq: int
    pts: Nanos
    duration: Nanos
    payload: T
    epoch: int = 0
    lineage: str | None = None

    @property
    def end(self) -> Nanos:
        """End of the covered span: ``pts + duration`` (ns)."""
        return self.pts + self.duration

    def derive(self, payload: U, *, stream: str | None = None) -> Packet[U]:
        """A packet with a new payload that keeps this one's timing, epoch and lineage."""
        return Packet(
            stream=self.stream if stream is None else stream,
            seq=self.seq,
            pts=self.pts,
            duration=self.duration,
            payload=payload,
            epoch=self.epoch,
            lineage=self.lineage,
        )

    def with_lineage(self, lineage: str | None) -> Packet[T]:
        """The same packet tagged with an utterance id."""
        return replace(self, lineage=lineage)


@dataclass(frozen=True, slots=True)
class Gap:
    """A declared hole in ``stream`` from ``start`` to ``end`` (ns): data that will never come."""

    stream: str
    start: Nanos
    end: Nanos
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Flush:
    """Discard everything in flight from epochs older than ``epoch``."""

    epoch: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """No more items will follow on this edge (in band; also produced by ``Edge.close``)."""

    stream: str = ""
    error: str | None = field(default=None)


Control = Gap | Flush | EndOfStream
"""Control events: never dropped, delivered in order with packets."""

Item = Packet[T] | Control
"""Anything that flows on an edge."""


def is_control(item: object) -> bool:
    """True for :data:`Control` events."""
    return isinstance(item, (Gap, Flush, EndOfStream))


class SeqTracker:
    """Counts packets lost upstream from holes in ``seq`` (pure; one instance per stream)."""

    def __init__(self) -> None:
        self._next: int | None = None
        self.lost: int = 0
        self.reordered: int = 0

    def observe(self, seq: int) -> int:
        """Record ``seq``; return how many packets were skipped just before it (≥ 0)."""
        if self._next is None or seq == self._next:
            self._next = seq + 1
            return 0
        if seq > self._next:
            skipped = seq - self._next
            self.lost += skipped
            self._next = seq + 1
            return skipped
        self.reordered += 1
        return 0
