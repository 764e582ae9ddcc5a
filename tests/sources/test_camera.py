"""CameraSource with a real video file standing in for the camera (real loop, real threads)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import cv2
import pytest

from streamkit import LoopClock, Packet, Pipeline, Policy, StageContext, StageFailed
from streamkit.core.clock import NS_PER_MS
from streamkit.core.events import ErrorEvent
from streamkit.sources.camera import CameraError, CameraSource

CLIP = Path(__file__).parents[1] / "data/video/imageio_test_handwave.webm"  # 94 frames


class Sink:
    def __init__(self, name: str, delay_ns: int = 0) -> None:
        self.name = name
        self.delay_ns = delay_ns
        self.items: list[tuple[int, Any]] = []

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input():
            self.items.append((ctx.clock.now(), item))
            if self.delay_ns:
                await ctx.clock.sleep(self.delay_ns)

    def packets(self) -> list[Packet[Any]]:
        return [i for _, i in self.items if isinstance(i, Packet)]


async def run_camera(camera: CameraSource, delay_ns: int = 0) -> tuple[Sink, Sink]:
    pipe = Pipeline(LoopClock())
    video = pipe.edge("video", 1, Policy.LATEST)
    events = pipe.edge("events", 16)
    sink, event_sink = Sink("sink", delay_ns), Sink("events_sink")
    pipe.add(camera, outputs={"video": video, "events": events})
    pipe.add(sink, inputs={"in": video})
    pipe.add(event_sink, inputs={"in": events})
    await pipe.run()
    return sink, event_sink


@pytest.mark.slow
async def test_file_as_camera_paced_and_stamped_at_grab() -> None:
    camera = CameraSource(CLIP, fps=60)
    sink, events = await run_camera(camera)
    frames = sink.packets()
    assert camera.frames == 94
    assert 40 < camera.measured_fps < 75
    assert len(frames) + camera.dropped >= 90  # whatever was not delivered was counted
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    assert all(b.seq > a.seq for a, b in itertools.pairwise(frames))
    for arrival, item in sink.items:
        if isinstance(item, Packet):
            assert item.pts <= arrival  # stamped at grab, before delivery
            assert arrival - item.pts < 500 * NS_PER_MS
    assert frames[0].payload.image.shape == (480, 640, 3)
    assert events.packets() == []


@pytest.mark.slow
async def test_slow_consumer_gets_latest_and_drops_are_counted() -> None:
    camera = CameraSource(CLIP, fps=60)
    sink, _ = await run_camera(camera, delay_ns=100 * NS_PER_MS)
    frames = sink.packets()
    assert camera.frames == 94
    assert len(frames) < 40  # ~1.6 s of frames at 10/s
    holes = sum(b.seq - a.seq - 1 for a, b in itertools.pairwise(frames))
    assert holes > 40
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))


class Flaky:
    """A VideoCapture that is missing at first, then dies after 20 frames once."""

    opens = 0

    def __init__(self, source: str) -> None:
        type(self).opens += 1
        self.n = type(self).opens
        self.cap = cv2.VideoCapture(source) if self.n > 1 else None
        self.grabs = 0

    def isOpened(self) -> bool:
        return self.cap is not None and self.cap.isOpened()

    def grab(self) -> bool:
        self.grabs += 1
        if self.n == 2 and self.grabs > 20:
            return False  # unplugged
        assert self.cap is not None
        return bool(self.cap.grab())

    def retrieve(self) -> tuple[bool, Any]:
        assert self.cap is not None
        return self.cap.retrieve()  # type: ignore[no-any-return]

    def get(self, prop: int) -> float:
        return float(self.cap.get(prop)) if self.cap is not None else 0.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()


@pytest.mark.slow
async def test_camera_that_disappears_emits_events_and_recovers() -> None:
    Flaky.opens = 0
    camera = CameraSource(CLIP, fps=100, retry_ns=50 * NS_PER_MS, opener=Flaky)
    camera.is_file = False  # behave like a device: a failing grab means "lost", not "ended"
    pipe_sink, event_sink = await _run_until_frames(camera, 40)
    codes = [p.payload.code for p in event_sink.packets()]
    assert codes[:2] == ["camera_unavailable", "camera_lost"]
    assert all(isinstance(p.payload, ErrorEvent) for p in event_sink.packets())
    assert camera.reconnects >= 2
    assert camera.frames >= 40
    frames = pipe_sink.packets()
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))


async def _run_until_frames(camera: CameraSource, n: int) -> tuple[Sink, Sink]:
    pipe = Pipeline(LoopClock())
    video = pipe.edge("video", 1, Policy.LATEST)
    events = pipe.edge("events", 16)

    class StopAfter(Sink):
        async def run(self, ctx: StageContext) -> None:
            async for item in ctx.input():
                self.items.append((ctx.clock.now(), item))
                if camera.frames >= n:
                    pipe.drain()

    sink, event_sink = StopAfter("sink"), Sink("events_sink")
    pipe.add(camera, outputs={"video": video, "events": events})
    pipe.add(sink, inputs={"in": video})
    pipe.add(event_sink, inputs={"in": events})
    await pipe.run()
    return sink, event_sink


async def test_missing_camera_gives_up_with_a_clear_message(tmp_path: Path) -> None:
    camera = CameraSource(str(tmp_path / "no-camera.mp4"), retry_ns=10 * NS_PER_MS, max_retries=2)
    with pytest.raises(StageFailed) as info:
        await run_camera(camera)
    assert isinstance(info.value.error, CameraError)
    assert "--camera" in str(info.value.error)
    assert [e.code for e in camera.errors] == ["camera_unavailable"] * 2
