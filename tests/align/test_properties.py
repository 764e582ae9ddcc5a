"""AlignerCore under generated schedules: jitter, drift, loss, reordering, stalls.

Whatever the schedule: nothing lost, nothing duplicated, windows in order and disjoint, each
window's content inside its range, late packets delivered after their window and counted,
no window held longer than ``max_latency`` past its end (deadline driven by next_deadline).
With bounded jitter and no stalls, nothing is late.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.align.core import AlignedWindow, AlignerConfig, AlignerCore
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.packet import Packet

MS = NS_PER_MS


@dataclass(frozen=True)
class Schedule:
    fps: int
    drift_ppm: int
    jitter_ms: int
    loss: frozenset[tuple[str, int]]
    stalls: tuple[tuple[str, int, int], ...]  # stream, start ms, length ms
    window_ms: int
    seconds: float


@st.composite
def schedules(draw: st.DrawFn, stalls: bool = True) -> Schedule:
    fps = draw(st.sampled_from([30, 25, 15]))
    seconds = draw(st.sampled_from([1.0, 2.0, 3.0]))
    n_audio = int(seconds * 50)
    n_video = int(seconds * fps)
    loss = draw(
        st.frozensets(
            st.one_of(
                st.tuples(st.just("audio"), st.integers(0, n_audio - 1)),
                st.tuples(st.just("video"), st.integers(0, n_video - 1)),
            ),
            max_size=10,
        )
    )
    stall_list: tuple[tuple[str, int, int], ...] = ()
    if stalls:
        stall_list = tuple(
            draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(["audio", "video"]),
                        st.integers(0, int(seconds * 1000)),
                        st.integers(50, 1500),
                    ),
                    max_size=3,
                )
            )
        )
    return Schedule(
        fps=fps,
        drift_ppm=draw(st.integers(-500, 500)),
        jitter_ms=draw(st.integers(0, 30)),
        loss=loss,
        stalls=stall_list,
        window_ms=draw(st.sampled_from([40, 100, 160])),
        seconds=seconds,
    )


def packets(s: Schedule, seed: int) -> list[tuple[Nanos, Packet[int]]]:
    """(arrival, packet): audio 20 ms chunks, video frames with drift; jitter/stalls delay."""
    out: list[tuple[Nanos, Packet[int]]] = []
    rng = random.Random(seed)
    streams = {
        "audio": (int(s.seconds * 50), 20 * MS, 20 * MS),
        "video": (
            int(s.seconds * s.fps),
            NS_PER_S * (1_000_000 + s.drift_ppm) // (s.fps * 1_000_000),
            0,
        ),
    }
    for name, (count, period, duration) in streams.items():
        for i in range(count):
            if (name, i) in s.loss:
                continue
            pts = 5 * MS + i * period
            arrival = pts + duration + rng.randint(0, s.jitter_ms * MS)
            for stream, start, length in s.stalls:
                if stream == name and start * MS <= arrival < (start + length) * MS:
                    arrival = (start + length) * MS + i  # burst at the end of the stall
            out.append((arrival, Packet(name, i, pts, duration, i)))
    out.sort(key=lambda e: (e[0], e[1].stream, e[1].seq))
    return out


def run(core: AlignerCore, schedule: list[tuple[Nanos, Packet[int]]]) -> list[AlignedWindow]:
    windows: list[AlignedWindow] = []
    now: Nanos = 0
    for arrival, packet in schedule:
        while (d := core.next_deadline(now)) is not None and d <= arrival:
            now = max(now, d)
            windows += core.poll(now)
            nxt = core.next_deadline(now)
            assert nxt is None or nxt > now, "next_deadline must move forward after poll"
        now = max(now, arrival)
        core.push(packet, now)
        windows += core.poll(now)
        assert core.buffered <= core.config.max_buffered, "buffer bound not enforced"
    for name in core.streams:
        core.end(name)
    windows += core.poll(now)
    assert core.buffered == 0
    return windows


def check(
    core: AlignerCore,
    cfg: AlignerConfig,
    sched: list[tuple[Nanos, Packet[int]]],
    windows: list[AlignedWindow],
) -> None:
    seen: list[tuple[str, int]] = []
    for w in windows:
        for name, group in w.packets.items():
            for p in group:
                assert p.stream == name
                assert w.start <= p.pts < w.end, "content outside its window"
            assert [(p.pts, p.seq) for p in group] == sorted((p.pts, p.seq) for p in group)
            seen += [(p.stream, p.seq) for p in group]
        for p in w.late:
            assert p.pts < w.start, "a late packet belongs to an earlier window"
            seen.append((p.stream, p.seq))
        assert w.end - w.start == cfg.window_ns
        if w.reason in ("watermark", "deadline") and any(w.packets.values()):
            # (a window holding only late packets may go out as soon as they arrive)
            assert w.emitted_at - w.end <= cfg.max_latency_ns
    starts = [w.start for w in windows]
    assert starts == sorted(set(starts)), "windows out of order or repeated"
    sent = [(p.stream, p.seq) for _, p in sched]
    assert sorted(seen) == sorted(sent), "lost or duplicated packets"
    stats = core.stats()["streams"]
    assert sum(s["late"] for s in stats.values()) == sum(len(w.late) for w in windows)


@settings(max_examples=100, deadline=None)
@given(schedules(), st.integers(0, 2**32))
def test_nothing_lost_or_duplicated(s: Schedule, seed: int) -> None:
    cfg = AlignerConfig(
        window_ns=s.window_ms * MS,
        max_latency_ns=150 * MS,
        inactive_after_ns=500 * MS,
        reorder_ns=20 * MS,
        origin=0,
    )
    core = AlignerCore(("audio", "video"), cfg)
    sched = packets(s, seed)
    check(core, cfg, sched, run(core, sched))


@settings(max_examples=60, deadline=None)
@given(schedules(stalls=False), st.integers(0, 2**32))
def test_bounded_jitter_means_nothing_late(s: Schedule, seed: int) -> None:
    # reorder ≥ jitter + packet duration and max_latency ≥ jitter + duration → never late
    cfg = AlignerConfig(
        window_ns=s.window_ms * MS,
        max_latency_ns=60 * MS,
        inactive_after_ns=2 * NS_PER_S,
        reorder_ns=50 * MS,
        origin=0,
    )
    core = AlignerCore(("audio", "video"), cfg)
    sched = packets(s, seed)
    windows = run(core, sched)
    check(core, cfg, sched, windows)
    assert all(not w.late for w in windows)


@settings(max_examples=40, deadline=None)
@given(schedules(), st.integers(0, 2**32), st.integers(4, 64))
def test_overflow_bound_keeps_everything(s: Schedule, seed: int, cap: int) -> None:
    # a tiny buffer bound forces windows out early: still nothing lost, duplicated or reordered
    cfg = AlignerConfig(
        window_ns=s.window_ms * MS,
        max_latency_ns=150 * MS,
        inactive_after_ns=500 * MS,
        max_buffered=cap,
        origin=0,
    )
    core = AlignerCore(("audio", "video"), cfg)
    sched = packets(s, seed)
    windows = run(core, sched)
    check(core, cfg, sched, windows)
