"""Pure ring buffers indexed by time: audio samples by pts, latest frame, a small frame ring.

- :class:`SampleRing`: mono audio on the shared clock. Chunks are written at their ``pts``;
  any range ``[t0, t1)`` can be read back, zero-filled where data is missing, together with
  exactly which parts are missing and why (``"gap"``: declared or skipped, ``"evicted"``:
  overwritten by newer audio, ``"future"``: not written yet). When full, the oldest samples
  are overwritten and counted (``overwritten``); a capture callback never blocks on it.
- :class:`LatestSlot`: one value, each ``put`` replaces the previous one (counted if unread).
- :class:`FrameRing`: the last few ``(pts, frame)`` pairs; ``nearest(t)`` and ``range(t0, t1)``.

All three are plain synchronous classes (sans-I/O): no clock reads, no locks, no awaits.
They are not thread-safe; a capture thread hands data to the loop thread first.

Time ↔ sample mapping (SampleRing): the first write fixes an origin; a pts maps to the sample
position ``round((pts - origin) * rate / 1e9)`` (exact integer arithmetic), so chunks whose
pts are contiguous to within half a sample land contiguously.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_S, Nanos

__all__ = ["FrameRing", "LatestSlot", "Missing", "RingRead", "SampleRing"]

T = TypeVar("T")

MissingReason = Literal["gap", "evicted", "future"]


@dataclass(frozen=True, slots=True)
class Missing:
    """A missing part ``[start, end)`` (ns) of a read, and why it is missing."""

    start: Nanos
    end: Nanos
    reason: MissingReason


@dataclass(frozen=True, slots=True)
class RingRead:
    """The result of :meth:`SampleRing.read`.

    ``samples`` (float32, zero where missing) starts at ``pts``; ``valid`` is the per-sample
    mask; ``missing`` lists the missing parts in time order. The arrays are copies: the
    caller owns them.
    """

    pts: Nanos
    sample_rate: int
    samples: npt.NDArray[np.float32]
    valid: npt.NDArray[np.bool_]
    missing: list[Missing] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when no sample of the range is missing."""
        return not self.missing

    @property
    def duration(self) -> Nanos:
        return len(self.samples) * NS_PER_S // self.sample_rate


class SampleRing:
    """Mono float32 audio indexed by pts on the shared clock.

    Args:
        capacity: samples kept (≥ 1); older ones are overwritten and counted.
        sample_rate: samples per second (Hz).

    Counters: ``written`` (samples stored), ``overwritten`` (valid samples lost to newer
    ones), ``late`` (samples that arrived older than the ring's span and were discarded),
    ``gap_samples`` (new positions skipped by a jump forward or declared by :meth:`gap`).
    Missing reasons in a read: ``"evicted"`` for audio that was stored and overwritten,
    ``"future"`` at or after :attr:`end_pts`, ``"gap"`` for everything else (skipped,
    declared, or before the first sample ever stored).
    """

    def __init__(self, capacity: int, sample_rate: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1 sample, got {capacity}")
        if sample_rate < 1:
            raise ValueError(f"sample_rate must be ≥ 1 Hz, got {sample_rate}")
        self.capacity = capacity
        self.sample_rate = sample_rate
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._valid = np.zeros(capacity, dtype=np.bool_)
        self._origin: Nanos | None = None
        self._head = 0  # one past the newest position ever covered
        self._tail = 0  # oldest position ever stored; before it nothing was recorded
        self.written = 0
        self.overwritten = 0
        self.late = 0
        self.gap_samples = 0

    # -- time mapping --------------------------------------------------------------------

    def position(self, pts: Nanos) -> int:
        """Sample position of ``pts`` (requires a first write to have fixed the origin)."""
        origin = self._require_origin()
        return ((pts - origin) * self.sample_rate * 2 + NS_PER_S) // (2 * NS_PER_S)

    def pts_of(self, position: int) -> Nanos:
        """pts (ns) of sample ``position``, rounded to the nearest ns."""
        origin = self._require_origin()
        return origin + (position * NS_PER_S * 2 + self.sample_rate) // (2 * self.sample_rate)

    @property
    def start_pts(self) -> Nanos | None:
        """pts of the oldest retained position (None before the first write)."""
        if self._origin is None:
            return None
        return self.pts_of(max(self._tail, self._head - self.capacity))

    @property
    def end_pts(self) -> Nanos | None:
        """pts just past the newest retained position (None before the first write)."""
        return None if self._origin is None else self.pts_of(self._head)

    # -- writing -------------------------------------------------------------------------

    def write(self, pts: Nanos, samples: npt.ArrayLike) -> None:
        """Store ``samples`` (mono; converted to float32) starting at ``pts``.

        Positions skipped between the previous end and ``pts`` become a ``"gap"``; a chunk
        that overlaps retained audio overwrites it (late data may fill a gap); parts older
        than the ring's span are dropped and counted in ``late``.
        """
        data = np.asarray(samples, dtype=np.float32)
        if data.ndim != 1:
            raise ValueError(f"SampleRing takes mono 1-D samples, got shape {data.shape}")
        if self._origin is None:
            self._origin = pts
        start = self.position(pts)
        end = start + len(data)
        if start > self._head:
            self.gap_samples += start - self._head
        self._advance(end)
        floor = self._head - self.capacity
        if start < floor:
            cut = min(len(data), floor - start)
            self.late += cut
            data = data[cut:]
            start += cut
        if len(data) == 0:
            return
        self._tail = min(self._tail, start)
        for (lo, hi), (dlo, dhi) in self._slices(start, start + len(data)):
            self._buf[lo:hi] = data[dlo:dhi]
            self._valid[lo:hi] = True
        self.written += len(data)

    def gap(self, start: Nanos, end: Nanos) -> None:
        """Declare ``[start, end)`` (ns) missing for good (e.g. a device overrun)."""
        if end <= start:
            return
        if self._origin is None:
            self._origin = start
        p0, p1 = self.position(start), self.position(end)
        self.gap_samples += (p1 - p0) + max(0, p0 - self._head)
        self._advance(p1)
        p0 = max(p0, self._head - self.capacity)
        if p1 <= p0:
            return
        for (lo, hi), _ in self._slices(p0, p1):
            self._valid[lo:hi] = False

    # -- reading -------------------------------------------------------------------------

    def read(self, t0: Nanos, t1: Nanos) -> RingRead:
        """Samples of ``[t0, t1)`` (ns), zero-filled where missing, with the missing parts."""
        if t1 < t0:
            raise ValueError(f"read range ends before it starts: [{t0}, {t1})")
        if self._origin is None:
            n = (t1 - t0) * self.sample_rate // NS_PER_S
            samples = np.zeros(n, dtype=np.float32)
            valid = np.zeros(n, dtype=np.bool_)
            missing = [Missing(t0, t1, "future")] if n else []
            return RingRead(t0, self.sample_rate, samples, valid, missing)
        a, b = self.position(t0), self.position(t1)
        n = b - a
        samples = np.zeros(n, dtype=np.float32)
        valid = np.zeros(n, dtype=np.bool_)
        reason = np.full(n, 0, dtype=np.int8)  # 0 ok/gap, 1 evicted, 2 future
        floor = max(self._tail, self._head - self.capacity)
        lo, hi = max(a, floor), min(b, self._head)
        if lo < hi:
            for (s0, s1), (d0, d1) in self._slices(lo, hi):
                samples[lo - a + d0 : lo - a + d1] = self._buf[s0:s1]
                valid[lo - a + d0 : lo - a + d1] = self._valid[s0:s1]
        ev_lo, ev_hi = max(a, self._tail), min(b, self._head - self.capacity)
        if ev_lo < ev_hi:
            reason[ev_lo - a : ev_hi - a] = 1
        if self._head < b:
            reason[max(0, self._head - a) :] = 2
        samples[~valid] = 0.0
        return RingRead(
            self.pts_of(a), self.sample_rate, samples, valid, self._missing(a, valid, reason)
        )

    # -- internals -----------------------------------------------------------------------

    def _require_origin(self) -> Nanos:
        if self._origin is None:
            raise RuntimeError("SampleRing has no origin yet: write() first")
        return self._origin

    def _advance(self, new_head: int) -> None:
        """Move the head to ``new_head``: evict what falls off, mark skipped slots invalid."""
        if new_head <= self._head:
            return
        span = min(new_head - self._head, self.capacity)
        first = new_head - span  # positions [first, new_head) take over their slots
        for (lo, hi), _ in self._slices(first, new_head):
            self.overwritten += int(np.count_nonzero(self._valid[lo:hi]))
            self._valid[lo:hi] = False
        self._head = new_head

    def _slices(self, p0: int, p1: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """Ring slots for positions [p0, p1) (len ≤ capacity) as (slot range, data range)."""
        n = p1 - p0
        i0 = p0 % self.capacity
        if i0 + n <= self.capacity:
            return [((i0, i0 + n), (0, n))]
        first = self.capacity - i0
        return [((i0, self.capacity), (0, first)), ((0, n - first), (first, n))]

    def _missing(
        self, a: int, valid: npt.NDArray[np.bool_], reason: npt.NDArray[np.int8]
    ) -> list[Missing]:
        if valid.all():
            return []
        code = np.where(valid, -1, reason).astype(np.int8)
        edges = np.flatnonzero(np.diff(code)) + 1
        bounds = [0, *edges.tolist(), len(code)]
        names: tuple[MissingReason, ...] = ("gap", "evicted", "future")
        out: list[Missing] = []
        for lo, hi in itertools.pairwise(bounds):
            c = int(code[lo])
            if c >= 0:
                out.append(Missing(self.pts_of(a + lo), self.pts_of(a + hi), names[c]))
        return out


class LatestSlot(Generic[T]):
    """Holds the newest value only (e.g. the latest camera frame).

    ``put`` replaces the held value; a replaced value that was never taken counts in
    ``overwritten``. ``take`` returns and clears it; ``peek`` returns it and keeps it.
    """

    def __init__(self) -> None:
        self._value: T | None = None
        self._has = False
        self.put_count = 0
        self.taken = 0
        self.overwritten = 0

    def put(self, value: T) -> None:
        if self._has:
            self.overwritten += 1
        self._value = value
        self._has = True
        self.put_count += 1

    def take(self) -> T | None:
        if not self._has:
            return None
        value, self._value, self._has = self._value, None, False
        self.taken += 1
        return value

    def peek(self) -> T | None:
        return self._value if self._has else None

    def __bool__(self) -> bool:
        return self._has


class FrameRing(Generic[T]):
    """The last ``capacity`` ``(pts, frame)`` pairs, kept in pts order.

    A frame older than the oldest kept one when full is dropped (counted in ``late``);
    otherwise the oldest frame is evicted (counted in ``overwritten``).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self._pts: list[Nanos] = []
        self._frames: list[T] = []
        self.overwritten = 0
        self.late = 0

    def push(self, pts: Nanos, frame: T) -> None:
        index = bisect.bisect_right(self._pts, pts)
        if len(self._pts) >= self.capacity:
            if index == 0:
                self.late += 1
                return
            del self._pts[0]
            del self._frames[0]
            self.overwritten += 1
            index -= 1
        self._pts.insert(index, pts)
        self._frames.insert(index, frame)

    def nearest(self, t: Nanos) -> tuple[Nanos, T] | None:
        """The frame whose pts is closest to ``t`` (the earlier one on a tie)."""
        if not self._pts:
            return None
        i = bisect.bisect_left(self._pts, t)
        if i == len(self._pts) or (i > 0 and t - self._pts[i - 1] <= self._pts[i] - t):
            i -= 1
        return self._pts[i], self._frames[i]

    def range(self, t0: Nanos, t1: Nanos) -> list[tuple[Nanos, T]]:
        """Frames with ``t0 <= pts < t1``, oldest first."""
        lo = bisect.bisect_left(self._pts, t0)
        hi = bisect.bisect_left(self._pts, t1)
        return list(zip(self._pts[lo:hi], self._frames[lo:hi], strict=True))

    def latest(self) -> tuple[Nanos, T] | None:
        return (self._pts[-1], self._frames[-1]) if self._pts else None

    def __len__(self) -> int:
        return len(self._pts)
