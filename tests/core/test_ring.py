"""SampleRing / LatestSlot / FrameRing against simple reference models (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.core.ring import FrameRing, LatestSlot, Missing, SampleRing

MS = 1_000_000
ORIGIN = 7_000_000_123  # arbitrary shared-clock time of the first sample


class RingModel:
    """Reference: a dict of valid positions plus head/tail, evicting below head - capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values: dict[int, float] = {}
        self.head: int | None = None
        self.tail: int | None = None
        self.overwritten = self.late = self.written = 0

    def _advance(self, new_head: int) -> None:
        assert self.head is not None
        if new_head > self.head:
            floor = new_head - self.capacity
            for pos in [p for p in self.values if p < floor]:
                del self.values[pos]
                self.overwritten += 1
            self.head = new_head

    def write(self, start: int, data: list[float]) -> None:
        if self.head is None:
            self.head = self.tail = start
        self._advance(start + len(data))
        floor = self.head - self.capacity
        stored = [(start + i, v) for i, v in enumerate(data) if start + i >= floor]
        self.late += len(data) - len(stored)
        for pos, v in stored:
            self.values[pos] = v
        if stored:
            assert self.tail is not None
            self.tail = min(self.tail, stored[0][0])
        self.written += len(stored)

    def gap(self, p0: int, p1: int) -> None:
        if self.head is None:
            self.head = self.tail = p0
        self._advance(p1)
        for pos in range(p0, p1):
            self.values.pop(pos, None)

    def read(self, a: int, b: int) -> tuple[list[float], list[str | None]]:
        assert self.head is not None
        assert self.tail is not None
        samples: list[float] = []
        reasons: list[str | None] = []
        for pos in range(a, b):
            if pos in self.values:
                samples.append(self.values[pos])
                reasons.append(None)
            else:
                samples.append(0.0)
                if pos >= self.head:
                    reasons.append("future")
                elif self.tail <= pos < self.head - self.capacity:
                    reasons.append("evicted")
                else:
                    reasons.append("gap")
        return samples, reasons


def _reasons_from_missing(
    missing: list[Missing], a_pts: int, n: int, ns_per_sample: int
) -> list[str | None]:
    out: list[str | None] = [None] * n
    for m in missing:
        assert m.start < m.end
        for i in range((m.start - a_pts) // ns_per_sample, (m.end - a_pts) // ns_per_sample):
            out[i] = m.reason
    return out


op = st.one_of(
    st.tuples(
        st.just("write"), st.integers(-40, 400), st.integers(0, 90), st.integers(-499_999, 499_999)
    ),
    st.tuples(st.just("gap"), st.integers(-40, 400), st.integers(1, 60), st.just(0)),
    st.tuples(st.just("read"), st.integers(-80, 480), st.integers(0, 120), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 128), ops=st.lists(op, min_size=1, max_size=40))
def test_sample_ring_matches_model(capacity: int, ops: list[tuple[str, int, int, int]]) -> None:
    """1 kHz so a sample is 1 ms; pts jitter below half a sample must not move a chunk."""
    ring = SampleRing(capacity, sample_rate=1000)
    model = RingModel(capacity)
    counter = 0
    first = True
    for kind, pos, length, jitter in ops:
        if first and kind != "write":
            continue  # the first write fixes the origin (so it is not jittered)
        if kind == "write":
            data = [float(counter * 1000 + i) for i in range(length)]
            counter += 1
            pts = ORIGIN + pos * MS + (0 if first else jitter)
            ring.write(pts, np.array(data, np.float32))
            model.write(pos, data)
            first = False
        elif kind == "gap":
            ring.gap(ORIGIN + pos * MS, ORIGIN + (pos + length) * MS)
            model.gap(pos, pos + length)
        else:
            got = ring.read(ORIGIN + pos * MS, ORIGIN + (pos + length) * MS)
            want, reasons = model.read(pos, pos + length)
            assert got.pts == ORIGIN + pos * MS
            assert got.samples.tolist() == want
            assert got.valid.tolist() == [r is None for r in reasons]
            assert _reasons_from_missing(got.missing, got.pts, length, MS) == reasons
            assert got.complete == all(r is None for r in reasons)
    assert (ring.overwritten, ring.late, ring.written) == (
        model.overwritten,
        model.late,
        model.written,
    )


def test_sample_ring_16k_contiguous_chunks_wrap_and_read_back() -> None:
    rate = 16_000
    ring = SampleRing(capacity=rate, sample_rate=rate)  # 1 s
    chunk = 320  # 20 ms
    signal = np.arange(rate * 3, dtype=np.float32)
    for i in range(0, len(signal), chunk):
        # after the first chunk (the origin), pts jitter by ±20 µs (< half a sample): contiguous
        jitter = 0 if i == 0 else (20_000 if i % 640 else -20_000)
        ring.write(ORIGIN + i * 62_500 + jitter, signal[i : i + chunk])
    assert ring.written == len(signal)
    assert ring.overwritten == 2 * rate
    assert ring.end_pts == ORIGIN + 3_000_000_000
    assert ring.start_pts == ORIGIN + 2_000_000_000
    last = ring.read(ORIGIN + 2_500_000_000, ORIGIN + 3_000_000_000)
    assert last.complete
    np.testing.assert_array_equal(last.samples, signal[40_000:48_000])
    straddle = ring.read(ORIGIN + 1_900_000_000, ORIGIN + 2_100_000_000)
    assert straddle.missing == [Missing(ORIGIN + 1_900_000_000, ORIGIN + 2_000_000_000, "evicted")]
    np.testing.assert_array_equal(straddle.samples[1600:], signal[32_000:33_600])
    assert not straddle.samples[:1600].any()


def test_sample_ring_explicit_gap_is_reported_and_zero_filled() -> None:
    ring = SampleRing(capacity=1000, sample_rate=1000)
    ring.write(ORIGIN, np.ones(100, np.float32))
    ring.gap(ORIGIN + 100 * MS, ORIGIN + 150 * MS)
    ring.write(ORIGIN + 150 * MS, np.ones(50, np.float32))
    got = ring.read(ORIGIN, ORIGIN + 250 * MS)
    assert got.missing == [
        Missing(ORIGIN + 100 * MS, ORIGIN + 150 * MS, "gap"),
        Missing(ORIGIN + 200 * MS, ORIGIN + 250 * MS, "future"),
    ]
    assert got.samples.sum() == 150.0
    assert ring.gap_samples == 50


def test_sample_ring_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="capacity"):
        SampleRing(0, 16_000)
    ring = SampleRing(10, 16_000)
    with pytest.raises(ValueError, match="mono"):
        ring.write(0, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="ends before"):
        ring.read(10, 5)
    assert ring.read(0, MS).missing == [Missing(0, MS, "future")]


@given(st.lists(st.one_of(st.integers(0, 1000), st.none()), max_size=50))
def test_latest_slot_counts_unread_overwrites(ops: list[int | None]) -> None:
    slot: LatestSlot[int] = LatestSlot()
    held: int | None = None
    overwritten = taken = 0
    for value in ops:
        if value is None:
            assert slot.take() == held
            taken += held is not None
            held = None
        else:
            overwritten += held is not None
            slot.put(value)
            held = value
        assert slot.peek() == held
        assert bool(slot) == (held is not None)
    assert (slot.overwritten, slot.taken, slot.put_count) == (
        overwritten,
        taken,
        sum(v is not None for v in ops),
    )


@given(
    capacity=st.integers(1, 12),
    pts=st.lists(st.integers(0, 2_000), max_size=60),
    probes=st.lists(st.integers(-100, 2_100), max_size=20),
)
def test_frame_ring_matches_sorted_window(capacity: int, pts: list[int], probes: list[int]) -> None:
    ring: FrameRing[int] = FrameRing(capacity)
    kept: list[tuple[int, int]] = []
    late = overwritten = 0
    for i, t in enumerate(pts):
        ring.push(t, i)
        candidate = sorted([*kept, (t, i)], key=lambda p: p[0])  # stable: equal pts keep order
        if len(candidate) > capacity:
            if candidate[0] == (t, i):
                late += 1
            else:
                overwritten += 1
            candidate = candidate[1:] if candidate[0] != (t, i) else kept
        kept = candidate
    assert ring.range(-(10**9), 10**9) == kept
    assert (ring.late, ring.overwritten, len(ring)) == (late, overwritten, len(kept))
    for t in probes:
        got = ring.nearest(t)
        if not kept:
            assert got is None
            continue
        assert got is not None
        best = min(abs(p - t) for p, _ in kept)
        assert abs(got[0] - t) == best
        assert ring.range(t, t + 500) == [(p, f) for p, f in kept if t <= p < t + 500]
    assert ring.latest() == (kept[-1] if kept else None)
