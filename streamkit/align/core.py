"""Temporal aligner core: per-stream watermarks → aligned windows on the shared clock (pure).

Streams (audio chunks, video frames, …) arrive at their own rates with jitter; every packet
carries its capture ``pts`` on the shared clock. :class:`AlignerCore` cuts the shared time line
into windows ``[origin + k·W, origin + (k+1)·W)`` and emits window ``k`` — holding every packet
whose ``pts`` lies inside it, per stream, in pts order — as soon as:

- **watermark**: every *live* stream has passed the window's end. A stream's watermark is the
  largest ``pts + duration`` it delivered (or a :class:`~streamkit.core.packet.Gap` declared), minus
  ``reorder_ns`` — the out-of-order tolerance: a packet may arrive up to ``reorder_ns`` behind
  the newest one of its stream and still land in its window;
- **deadline**: or the shared clock reached ``end + max_latency_ns``; the window then names the
  streams that had not passed its end (``missing``);
- **overflow**: or more than ``max_buffered`` packets are held (the oldest window is forced out).

A stream that delivered nothing for ``inactive_after_ns`` is *inactive*: windows stop waiting
for it (no added latency) and name it in ``inactive``; its next packet makes it live again.
A stream that ended (:meth:`end`) never holds windows back again.

Nothing is lost or duplicated: a packet whose window was already emitted is *late*: it is
counted (``stats()``) and delivered in the ``late`` field of the next emitted window. Windows
with no content at all are skipped, so ``index`` may jump. :meth:`nearest` answers
"which frame of a stream is nearest to time t" from a bounded history.

Pure and synchronous: no clock reads, no I/O. The caller passes ``now`` (ns on the shared
clock) and calls :meth:`poll` at :meth:`next_deadline` (see :mod:`streamkit.align.stage`).
Not thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.packet import Gap, Packet
from streamkit.core.ring import FrameRing

__all__ = ["AlignedWindow", "AlignerConfig", "AlignerCore", "EmitReason"]

EmitReason = Literal["watermark", "deadline", "overflow", "end"]

_INF = 1 << 62


@dataclass(frozen=True, slots=True)
class AlignerConfig:
    """Aligner settings (all times ns on the shared clock).

    Attributes:
        window_ns: window length W.
        max_latency_ns: a window is emitted at the latest at ``end + max_latency_ns``.
        reorder_ns: out-of-order tolerance (watermark hold-back); 0 for in-order streams.
        inactive_after_ns: a stream silent for this long stops holding windows back.
        max_buffered: packets held at most; beyond it the oldest window is forced out.
        origin: start of window 0; ``None`` → the first packet's pts.
        history_streams: streams whose recent packets :meth:`AlignerCore.nearest` searches.
        history_frames: packets kept per history stream (a :class:`~streamkit.core.ring.FrameRing`).
    """

    window_ns: Nanos = 100 * NS_PER_MS
    max_latency_ns: Nanos = 250 * NS_PER_MS
    reorder_ns: Nanos = 0
    inactive_after_ns: Nanos = 1 * NS_PER_S
    max_buffered: int = 8192
    origin: Nanos | None = None
    history_streams: tuple[str, ...] = ("video",)
    history_frames: int = 300

    def __post_init__(self) -> None:
        if self.window_ns <= 0:
            raise ValueError(f"window_ns must be > 0, got {self.window_ns}")
        if self.max_latency_ns < 0 or self.reorder_ns < 0 or self.inactive_after_ns <= 0:
            raise ValueError("max_latency_ns/reorder_ns must be ≥ 0, inactive_after_ns > 0")
        if self.max_buffered < 1:
            raise ValueError(f"max_buffered must be ≥ 1, got {self.max_buffered}")


@dataclass(frozen=True, slots=True, eq=False)
class AlignedWindow:
    """One emitted window ``[start, end)`` and what every stream had in it.

    Attributes:
        index: window number ``(start - origin) // window_ns`` (increasing; may jump).
        packets: per stream, the packets with ``start ≤ pts < end``, in (pts, seq) order;
            every known stream has an entry (possibly empty).
        gaps: gaps declared upstream that start inside the window (or arrived late).
        late: packets that arrived after their own window was emitted, in arrival order.
        missing: streams (not ended) whose watermark had not reached ``end`` at emission.
        inactive: streams considered inactive at emission.
        reason: what released the window.
        emitted_at: shared-clock time of emission (``emitted_at - end`` = added latency).
    """

    index: int
    start: Nanos
    end: Nanos
    packets: Mapping[str, tuple[Packet[Any], ...]]
    gaps: tuple[Gap, ...] = ()
    late: tuple[Packet[Any], ...] = ()
    missing: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()
    reason: EmitReason = "watermark"
    emitted_at: Nanos = 0

    def stream(self, name: str) -> tuple[Packet[Any], ...]:
        """Packets of stream ``name`` inside the window (empty when none)."""
        return self.packets.get(name, ())

    @property
    def count(self) -> int:
        """Packets carried (in range plus late)."""
        return sum(len(p) for p in self.packets.values()) + len(self.late)


@dataclass
class _Stream:
    name: str
    max_end: Nanos | None = None
    last_arrival: Nanos | None = None
    ended: bool = False
    pushed: int = 0
    late: int = 0
    gaps: int = 0
    reactivated: int = 0
    was_live: bool = True


@dataclass
class _Bucket:
    packets: dict[str, list[Packet[Any]]] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    late: list[Packet[Any]] = field(default_factory=list)

    def size(self) -> int:
        return sum(len(p) for p in self.packets.values()) + len(self.late)


class AlignerCore:
    """Pure temporal aligner (see the module docstring).

    Args:
        streams: the streams expected from the start (others are added on first packet).
        config: window length, deadlines and tolerances.
    """

    def __init__(self, streams: Iterable[str], config: AlignerConfig | None = None) -> None:
        self.config = config if config is not None else AlignerConfig()
        self._streams: dict[str, _Stream] = {}
        for name in streams:
            self._streams[name] = _Stream(name)
        self._origin: Nanos | None = self.config.origin
        self._buckets: dict[int, _Bucket] = {}
        self._buffered = 0
        self._next: int | None = None
        self._started_at: Nanos | None = None
        self._history: dict[str, FrameRing[Packet[Any]]] = {
            s: FrameRing(self.config.history_frames) for s in self.config.history_streams
        }
        self.emitted = 0
        self.reasons: dict[str, int] = {}

    # -- input ---------------------------------------------------------------------------

    def push(self, packet: Packet[Any], now: Nanos) -> None:
        """Add a packet of stream ``packet.stream`` that arrived at ``now``."""
        st = self._arrive(packet.stream, now)
        st.pushed += 1
        end = packet.pts + packet.duration
        st.max_end = end if st.max_end is None else max(st.max_end, end)
        if self._origin is None:
            self._origin = packet.pts
        self._advance(self._by_deadline(now))
        index = self._index(packet.pts)
        if self._next is not None and index < self._next:
            st.late += 1
            self._bucket(self._next).late.append(packet)
        else:
            self._bucket(index).packets.setdefault(packet.stream, []).append(packet)
        self._buffered += 1
        if packet.stream in self._history:
            self._history[packet.stream].push(packet.pts, packet)

    def gap(self, gap: Gap, now: Nanos) -> None:
        """Stream ``gap.stream`` declares that ``[gap.start, gap.end)`` will never come."""
        st = self._arrive(gap.stream, now)
        st.gaps += 1
        st.max_end = gap.end if st.max_end is None else max(st.max_end, gap.end)
        if self._origin is None:
            self._origin = gap.start
        self._advance(self._by_deadline(now))
        index = self._index(gap.start)
        if self._next is not None and index < self._next:
            index = self._next
        self._bucket(index).gaps.append(gap)

    def end(self, stream: str) -> None:
        """Stream ``stream`` will send nothing more (end of stream)."""
        self._stream(stream).ended = True

    # -- output --------------------------------------------------------------------------

    def poll(self, now: Nanos) -> list[AlignedWindow]:
        """Windows that are ready at ``now``, in order (possibly none)."""
        if self._started_at is None:
            self._started_at = now
        out: list[AlignedWindow] = []
        if self._origin is None:
            return out
        live = self._live(now)
        limit, passed = self._ready_limit(now, live)
        while self._buckets:
            first = min(self._buckets)
            if first < limit:
                reason: EmitReason = "end" if self.all_ended else self._reason(first, live)
            elif self._buffered > self.config.max_buffered:
                reason = "overflow"
            else:
                break
            out.append(self._emit(first, now, live, reason))
        self._advance(passed)
        return out

    def next_deadline(self, now: Nanos) -> Nanos | None:
        """Earliest shared time at which :meth:`poll` may emit without new input, or None."""
        if not self._buckets or self._origin is None:
            return None
        first = min(self._buckets)
        end = self._start(first + 1)
        deadline = end + self.config.max_latency_ns
        for st in self._streams.values():
            if st.ended or self._watermark(st) >= end:
                continue
            since = st.last_arrival if st.last_arrival is not None else self._started_at
            if since is not None and now - since <= self.config.inactive_after_ns:
                deadline = min(deadline, since + self.config.inactive_after_ns + 1)
        return deadline

    def flush(self, now: Nanos) -> list[AlignedWindow]:
        """Emit everything held now (shutdown), in order; later packets count as late."""
        live = self._live(now)
        out = [self._emit(first, now, live, "end") for first in sorted(self._buckets)]
        return out

    def nearest(self, stream: str, t: Nanos) -> Packet[Any] | None:
        """The remembered packet of ``stream`` whose pts is closest to ``t`` (ties: earlier)."""
        ring = self._history.get(stream)
        found = ring.nearest(t) if ring is not None else None
        return None if found is None else found[1]

    @property
    def all_ended(self) -> bool:
        return bool(self._streams) and all(st.ended for st in self._streams.values())

    @property
    def buffered(self) -> int:
        """Packets currently held (in windows not yet emitted)."""
        return self._buffered

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._streams)

    def watermark(self, stream: str) -> Nanos | None:
        """Stream's watermark (ns), or None before its first packet."""
        st = self._stream(stream)
        return None if st.max_end is None else self._watermark(st)

    def stats(self) -> dict[str, Any]:
        """Counters: windows emitted/skipped by reason; per stream pushed/late/gaps/wm."""
        return {
            "emitted": self.emitted,
            "buffered": self._buffered,
            "reasons": dict(self.reasons),
            "streams": {
                st.name: {
                    "pushed": st.pushed,
                    "late": st.late,
                    "gaps": st.gaps,
                    "reactivated": st.reactivated,
                    "ended": st.ended,
                    "watermark": self.watermark(st.name),
                }
                for st in self._streams.values()
            },
        }

    # -- internals -----------------------------------------------------------------------

    def _stream(self, name: str) -> _Stream:
        st = self._streams.get(name)
        if st is None:
            st = self._streams[name] = _Stream(name)
        return st

    def _arrive(self, name: str, now: Nanos) -> _Stream:
        if self._started_at is None:
            self._started_at = now
        st = self._stream(name)
        if not st.was_live:
            st.reactivated += 1
            st.was_live = True
        st.last_arrival = now
        st.ended = False
        return st

    def _index(self, t: Nanos) -> int:
        assert self._origin is not None
        return (t - self._origin) // self.config.window_ns

    def _start(self, index: int) -> Nanos:
        assert self._origin is not None
        return self._origin + index * self.config.window_ns

    def _bucket(self, index: int) -> _Bucket:
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = _Bucket()
        return bucket

    def _watermark(self, st: _Stream) -> Nanos:
        if st.ended:
            return _INF
        if st.max_end is None:
            return -_INF
        return st.max_end - self.config.reorder_ns

    def _live(self, now: Nanos) -> set[str]:
        live: set[str] = set()
        for st in self._streams.values():
            if st.ended:
                continue
            since = st.last_arrival if st.last_arrival is not None else self._started_at
            is_live = since is None or now - since <= self.config.inactive_after_ns
            st.was_live = is_live
            if is_live:
                live.add(st.name)
        return live

    def _by_deadline(self, now: Nanos) -> int:
        """Windows with index below this are past their deadline at ``now``."""
        return (now - self.config.max_latency_ns - self._start(0)) // self.config.window_ns

    def _ready_limit(self, now: Nanos, live: set[str]) -> tuple[int, int]:
        """(limit, passed): windows < limit are ready; windows < passed are closed for good."""
        by_deadline = self._by_deadline(now)
        wms = [self._watermark(self._streams[s]) for s in live]
        if self.all_ended or not wms:
            return _INF, by_deadline
        wm = min(wms)
        by_wm = (wm - self._start(0)) // self.config.window_ns if wm > -_INF else -_INF
        limit = max(by_wm, by_deadline)
        return limit, limit

    def _reason(self, index: int, live: set[str]) -> EmitReason:
        end = self._start(index + 1)
        if all(self._watermark(self._streams[s]) >= end for s in live):
            return "watermark"
        return "deadline"

    def _advance(self, limit: int) -> None:
        if self._next is None or limit > self._next:
            self._next = limit

    def _emit(self, index: int, now: Nanos, live: set[str], reason: EmitReason) -> AlignedWindow:
        bucket = self._buckets.pop(index)
        self._buffered -= bucket.size()
        self._advance(index + 1)
        start, end = self._start(index), self._start(index + 1)
        packets = {
            name: tuple(sorted(bucket.packets.get(name, ()), key=lambda p: (p.pts, p.seq)))
            for name in self._streams
        }
        missing = tuple(
            st.name for st in self._streams.values() if not st.ended and self._watermark(st) < end
        )
        inactive = tuple(
            st.name for st in self._streams.values() if not st.ended and st.name not in live
        )
        self.emitted += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        return AlignedWindow(
            index=index,
            start=start,
            end=end,
            packets=packets,
            gaps=tuple(bucket.gaps),
            late=tuple(bucket.late),
            missing=missing,
            inactive=inactive,
            reason=reason,
            emitted_at=now,
        )
