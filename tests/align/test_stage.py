"""AlignStage on virtual time: deadlines and inactivity on the loop, pass-through order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from streamkit import LoopClock, Packet, Pipeline, StageContext
from streamkit.align.core import AlignedWindow, AlignerConfig
from streamkit.align.stage import AlignStage
from streamkit.core.clock import NS_PER_MS, NS_PER_S, NS_PER_US
from streamkit.core.media import AudioChunk, VideoFrame
from streamkit.core.operators import Collector
from streamkit.core.packet import Flush

MS = NS_PER_MS


class Live:
    """Audio chunks at their end time; 25 fps frames at grab, except during a stall."""

    name = "live"
    outputs = ("audio", "video")

    def __init__(self, seconds: float, stall: tuple[int, int] | None) -> None:
        self.seconds = seconds
        self.stall = stall

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        base = ctx.base_time
        samples = np.zeros(320, np.float32)
        image = np.zeros((2, 2, 3), np.uint8)
        a = v = 0
        while (a + 1) * 20 * MS <= self.seconds * NS_PER_S:
            a_due, v_due = base + (a + 1) * 20 * MS, base + 5 * MS + v * 40 * MS
            if a_due <= v_due:
                await ctx.clock.sleep_until(a_due)
                await ctx.output("audio").put(
                    Packet("audio", a, a_due - 20 * MS, 20 * MS, AudioChunk(samples))
                )
                a += 1
                if a == 10:
                    await ctx.output("audio").put(Flush(1, "test"))
                continue
            await ctx.clock.sleep_until(v_due)
            stalled = self.stall and self.stall[0] * MS <= v_due - base < self.stall[1] * MS
            if not stalled:
                await ctx.output("video").put(Packet("video", v, v_due, 0, VideoFrame(image)))
            v += 1




async def run(
    seconds: float, stall: tuple[int, int] | None, with_video: bool = True
) -> tuple[list[AlignedWindow], Collector, Collector, int]:
    pipe = Pipeline(LoopClock())
    a, v = pipe.edge("a", 8), pipe.edge("v", 8)
    w, ao, vo = pipe.edge("w", 8), pipe.edge("ao", 8), pipe.edge("vo", 8)
    cfg = AlignerConfig(window_ns=100 * MS, max_latency_ns=200 * MS, inactive_after_ns=NS_PER_S)
    align = AlignStage(("audio", "video"), cfg)
    windows, audio_out, video_out = Collector("w"), Collector("ao"), Collector("vo")
    pipe.add(Live(seconds, stall), outputs={"audio": a, "video": v})
    inputs = {"audio": a, "video": v} if with_video else {"audio": a}
    pipe.add(align, inputs=inputs, outputs={"windows": w, "audio": ao, "video": vo})
    if not with_video:
        pipe.add(Collector("drop_video"), inputs={"in": v})
    for sink, edge in ((windows, w), (audio_out, ao), (video_out, vo)):
        pipe.add(sink, inputs={"in": edge})
    await pipe.run()
    assert pipe.state.base_time is not None
    ws = [p.payload for p in windows.items if isinstance(p, Packet)]
    return ws, audio_out, video_out, pipe.state.base_time


@pytest.mark.looptime
async def test_stall_deadline_then_inactive_then_resume() -> None:
    ws, audio_out, video_out, _ = await run(4.0, stall=(1000, 2600))
    assert [w.index for w in ws] == list(range(40))
    by = {w.index: w for w in ws}
    tol = 50 * NS_PER_US  # virtual loop resolution and scheduling order
    # before the stall: released when both streams passed the end (next frame at +5 ms)
    assert by[5].reason == "watermark"
    assert by[5].emitted_at - by[5].end <= 5 * MS + tol
    # video stalls at 1.0 s: window [1.0, 1.1) waits max_latency and names video
    assert by[10].reason == "deadline"
    assert by[10].missing == ("video",)
    assert abs(by[10].emitted_at - by[10].end - 200 * MS) <= tol
    # 1 s without video (from its last frame at 0.965 s): inactive, no more waiting
    assert by[22].inactive == ("video",)
    assert by[22].emitted_at - by[22].end <= tol
    # video back at 2.6 s: live again, windows wait for it again
    assert by[30].inactive == ()
    assert by[30].reason == "watermark"
    # pass-through: all audio exactly once, in order, contiguous; the flush forwarded in place
    chunks = [p for p in audio_out.items if isinstance(p, Packet)]
    assert [p.seq for p in chunks] == list(range(200))
    assert all(b.pts == a.end for a, b in itertools.pairwise(chunks))
    assert any(isinstance(i, Flush) for i in audio_out.items)
    frames = [p for p in video_out.items if isinstance(p, Packet)]
    seqs = [p.seq for p in frames]
    assert seqs == sorted(set(seqs))
    assert len(seqs) == 100 - 40  # 40 frames fell in the stall
    assert sum(w.count for w in ws) == 200 + 60


@pytest.mark.looptime
async def test_unconnected_stream_does_not_hold_windows() -> None:
    ws, _, video_out, _ = await run(1.0, stall=None, with_video=False)
    assert len(ws) == 10
    assert all(w.reason in ("watermark", "end") and w.stream("video") == () for w in ws)
    assert all(w.emitted_at - w.end <= 50 * NS_PER_US for w in ws[:-1])
    assert [i for i in video_out.items if isinstance(i, Packet)] == []
