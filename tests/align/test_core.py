"""AlignerCore: deterministic cases (watermark, deadline, inactivity, late, gaps, nearest)."""

from __future__ import annotations

import pytest

from streamkit.align.core import AlignedWindow, AlignerConfig, AlignerCore
from streamkit.core.clock import NS_PER_MS, NS_PER_S
from streamkit.core.packet import Gap, Packet

MS = NS_PER_MS


def audio(i: int, chunk: int = 20 * MS) -> Packet[int]:
    return Packet("audio", i, i * chunk, chunk, i)


def video(i: int, period: int) -> Packet[int]:
    return Packet("video", i, i * period, period, i)


def core(**kw: int) -> AlignerCore:
    cfg = AlignerConfig(
        window_ns=kw.pop("window", 100 * MS),
        max_latency_ns=kw.pop("max_latency", 200 * MS),
        inactive_after_ns=kw.pop("inactive", 1 * NS_PER_S),
        reorder_ns=kw.pop("reorder", 0),
        max_buffered=kw.pop("max_buffered", 8192),
        origin=0,
    )
    assert not kw
    return AlignerCore(("audio", "video"), cfg)


def test_watermark_release_adds_no_latency() -> None:
    # audio chunks + 25 fps frames, each arriving at its end time
    c = core()
    out: list[AlignedWindow] = []
    events = [(audio(i).end, audio(i)) for i in range(20)]
    events += [(video(j, 40 * MS).end, video(j, 40 * MS)) for j in range(10)]
    events.sort(key=lambda e: (e[0], e[1].stream))
    for t, p in events:
        c.push(p, t)
        out += c.poll(t)
    assert [w.index for w in out] == [0, 1, 2, 3]
    for w in out:
        assert w.reason == "watermark"
        assert w.missing == ()
        assert len(w.stream("audio")) == 5
        assert all(w.start <= p.pts < w.end for p in w.stream("video"))
        # released by the packet that crossed the end: the 40 ms frame grid ends at 120/200/...
        assert w.emitted_at - w.end < 40 * MS
    assert [len(w.stream("video")) for w in out] == [3, 2, 3, 2]


def test_deadline_names_missing_stream_then_inactive_then_resumes() -> None:
    c = core(max_latency=200 * MS, inactive=1 * NS_PER_S)
    out: list[AlignedWindow] = []
    t = 0
    for i in range(150):  # 3 s of audio; video only for the first 0.5 s and after 2.5 s
        t = audio(i).end
        c.push(audio(i), t)
        if i % 2 == 1 and (t <= 500 * MS or t > 2500 * MS):
            c.push(video(i // 2, 40 * MS), t)
        out += c.poll(t)
        d = c.next_deadline(t)
        assert d is None or d > t
    by_index = {w.index: w for w in out}
    assert by_index[3].reason == "watermark"
    stalled = by_index[6]
    assert stalled.reason == "deadline"
    assert stalled.missing == ("video",)
    assert stalled.emitted_at == stalled.end + 200 * MS
    inactive = by_index[18]  # video silent since 0.5 s → inactive from 1.5 s
    assert inactive.inactive == ("video",)
    assert inactive.reason == "watermark"
    assert inactive.emitted_at == inactive.end  # no waiting for an inactive stream
    assert c.stats()["streams"]["video"]["reactivated"] == 1
    resumed = by_index[27]
    assert resumed.inactive == ()
    assert resumed.reason == "watermark"
    # the resuming frame (pts 2480 ms, arriving at 2520 ms) predates the window [2400, 2500)
    # released while video was inactive: it is late, counted, and still delivered
    assert c.stats()["streams"]["video"]["late"] == 1
    assert [p.pts for w in out for p in w.late] == [2480 * MS]


def test_late_packet_counted_and_delivered_once() -> None:
    c = core(max_latency=50 * MS)
    out: list[AlignedWindow] = []
    for i in range(10):
        c.push(audio(i), audio(i).end)
        out += c.poll(audio(i).end)
    out += c.poll(260 * MS)  # video never came: windows 0, 1 go out at their deadlines
    assert [(w.index, w.reason, w.missing) for w in out] == [
        (0, "deadline", ("video",)),
        (1, "deadline", ("video",)),
    ]
    late = video(1, 40 * MS)
    c.push(late, 261 * MS)
    for i in range(10, 20):
        t = max(audio(i).end, 262 * MS)
        c.push(audio(i), t)
        if i % 2 == 0:
            c.push(video(i // 2, 40 * MS), t)
        out += c.poll(t)
    for name in ("audio", "video"):
        c.end(name)
    out += c.poll(500 * MS)
    carried = [w for w in out if w.late]
    assert len(carried) == 1
    assert carried[0].late == (late,)
    assert carried[0].start > late.pts
    assert c.stats()["streams"]["video"]["late"] == 1
    seen = [p for w in out for s in w.packets.values() for p in s]
    seen += [p for w in out for p in w.late]
    assert len(seen) == len({(p.stream, p.seq) for p in seen}) == 20 + 6


def test_reorder_within_bound_is_not_late() -> None:
    c = core(reorder=40 * MS)
    order = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]
    out: list[AlignedWindow] = []
    for k, i in enumerate(order):
        t = (k + 1) * 20 * MS
        c.push(audio(i), t)
        c.push(Packet("video", k, i * 20 * MS, 20 * MS, k), t)
        out += c.poll(t)
    assert c.stats()["streams"]["audio"]["late"] == 0
    assert [w.index for w in out] == [0, 1]  # watermark 240 - 40 ms passed 200 ms
    assert [p.seq for p in out[0].stream("audio")] == [0, 1, 2, 3, 4]
    assert [p.seq for p in out[1].stream("audio")] == [5, 6, 7, 8, 9]


def test_gap_advances_watermark_and_is_reported() -> None:
    c = core()
    c.push(audio(0), 20 * MS)
    c.push(video(0, 40 * MS), 40 * MS)
    c.gap(Gap("video", 40 * MS, 200 * MS, "camera lost"), 60 * MS)
    out = []
    for i in range(1, 6):
        c.push(audio(i), audio(i).end)
        out += c.poll(audio(i).end)
    assert [w.index for w in out] == [0]
    assert out[0].reason == "watermark"
    assert out[0].gaps == (Gap("video", 40 * MS, 200 * MS, "camera lost"),)


def test_overflow_forces_oldest_window() -> None:
    c = core(max_buffered=8, max_latency=10 * NS_PER_S)
    out = []
    for i in range(12):
        c.push(audio(i), audio(i).end)
        out += c.poll(audio(i).end)
    assert out
    assert out[0].reason == "overflow"
    assert c.buffered <= 8


def test_nearest_frame() -> None:
    c = AlignerCore(("video",), AlignerConfig(origin=0, history_frames=30))
    for j in range(60):
        c.push(video(j, NS_PER_S // 30), j * NS_PER_S // 30)
    near = c.nearest("video", 1_000 * MS)
    assert near is not None
    assert near.seq == 30
    near = c.nearest("video", 1_016 * MS)  # 30 → 1000 ms, 31 → 1033.3 ms
    assert near is not None
    assert near.seq == 30
    assert c.nearest("video", 0) is not None
    assert c.nearest("video", 0).seq == 30  # type: ignore[union-attr]  # the last 30 kept
    assert c.nearest("audio", 0) is None


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="window_ns"):
        AlignerConfig(window_ns=0)
