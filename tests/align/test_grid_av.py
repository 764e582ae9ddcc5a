"""GRID talking-head clips (real audio + video) → FileSource → AlignStage on virtual time.

Ground truth comes from an independent PyAV decode of the same file: every window must pair
exactly the video frames and audio chunks whose container times fall inside it, nothing lost
or duplicated, and the pass-through audio must be sample-exact.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import av
import numpy as np
import pytest
import soxr

from streamkit import LoopClock, Packet, Pipeline, Policy
from streamkit.align.core import AlignedWindow, AlignerConfig
from streamkit.align.stage import AlignStage
from streamkit.core.clock import NS_PER_MS
from streamkit.core.media import samples_to_ns
from streamkit.core.operators import Collector
from streamkit.sources.files import FileSource, tb_to_ns

GRID = sorted((Path(__file__).parents[1] / "data" / "av" / "grid").glob("*.mpg"))


def truth(path: Path) -> tuple[list[int], int, np.ndarray]:
    """(video frame times ns, first audio time ns, whole track mono 16 kHz) from PyAV."""
    with av.open(str(path)) as c:
        origin = (c.start_time or 0) * 1_000_000_000 // av.time_base
        frames: list[int] = []
        audio: list[np.ndarray] = []
        first_audio: int | None = None
        mix = av.AudioResampler(format="flt", layout="mono", rate=c.streams.audio[0].rate)
        for packet in c.demux():
            for frame in packet.decode():
                t = tb_to_ns(frame.pts, frame.time_base) - origin
                if packet.stream.type == "video":
                    frames.append(t)
                else:
                    first_audio = t if first_audio is None else first_audio
                    audio += [m.to_ndarray().reshape(-1) for m in mix.resample(frame)]
        rate = c.streams.audio[0].rate
    assert first_audio is not None
    return frames, first_audio, soxr.resample(np.concatenate(audio), rate, 16_000)




@pytest.mark.looptime
@pytest.mark.parametrize("path", GRID, ids=[p.stem for p in GRID])
async def test_grid_windows_pair_container_times_exactly(path: Path) -> None:
    frame_times, audio_start, track = truth(path)
    source = FileSource(path, pace=True)
    assert source.outputs == ("audio", "video")
    window_ns = 100 * NS_PER_MS
    align = AlignStage(("audio", "video"), AlignerConfig(window_ns=window_ns))
    windows, audio_out, video_out = Collector("windows"), Collector("a_out"), Collector("v_out")
    pipe = Pipeline(LoopClock())
    a, v = pipe.edge("audio", 16), pipe.edge("video", 4)
    w, ao, vo = pipe.edge("w", 4), pipe.edge("ao", 16), pipe.edge("vo", 64, Policy.BLOCK)
    pipe.add(source, outputs={"audio": a, "video": v})
    pipe.add(
        align, inputs={"audio": a, "video": v}, outputs={"windows": w, "audio": ao, "video": vo}
    )
    for sink, edge in ((windows, w), (audio_out, ao), (video_out, vo)):
        pipe.add(sink, inputs={"in": edge})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await pipe.run()
    elapsed = loop.time() - t0
    base = pipe.state.base_time
    assert base is not None
    # paced by anchor on the virtual clock: the run lasts as long as the media
    assert 2.9 < elapsed < 3.2

    ws: list[AlignedWindow] = [p.payload for p in windows.items]
    assert [x.index for x in ws] == list(range(len(ws)))
    assert len(ws) == 30
    assert all(not x.late and not x.missing for x in ws)
    assert {x.reason for x in ws[:-1]} == {"watermark"}
    n_chunks = -(-len(track) // 320)
    video_seen: list[int] = []
    audio_seen: list[int] = []
    for x in ws:
        lo, hi = x.start - base, x.end - base
        vids = [p.pts - base for p in x.stream("video")]
        # the frames in this window are exactly the container frames inside its range
        assert vids == [t for t in frame_times if lo <= t < hi]
        auds = [p.pts - base for p in x.stream("audio")]
        expect = [audio_start + samples_to_ns(320 * k, 16_000) for k in range(n_chunks)]
        assert auds == [t for t in expect if lo <= t < hi]
        video_seen += vids
        audio_seen += auds
    assert video_seen == frame_times  # all 75 frames, once, in order
    assert len(audio_seen) == n_chunks

    # pass-through: sample-exact audio and every frame, in order, with their images
    chunks = [p for p in audio_out.items if isinstance(p, Packet)]
    got = np.concatenate([p.payload.samples for p in chunks])
    np.testing.assert_array_equal(got, track.astype(np.float32))
    assert all(b.pts == a.end for a, b in itertools.pairwise(chunks))
    frames = [p for p in video_out.items if isinstance(p, Packet)]
    assert [p.pts - base for p in frames] == frame_times
    assert frames[0].payload.image.shape == (288, 360, 3)
    # the frame nearest to the clip's midpoint is the container frame at 1.5 s
    mid = align.nearest("video", base + 1_500 * NS_PER_MS)
    assert mid is not None
    assert mid.pts - base == min(frame_times, key=lambda t: abs(t - 1_500 * NS_PER_MS))
