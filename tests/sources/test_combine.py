"""CombinedSource: a speech file on "audio" and a video file as the camera on "video"."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamkit import LoopClock, Packet, Pipeline, Policy
from streamkit.core.operators import Collector
from streamkit.sources.camera import CameraSource
from streamkit.sources.combine import CombinedSource
from streamkit.sources.files import FileSource

DATA = Path(__file__).parents[1] / "data"




@pytest.mark.slow
async def test_file_audio_plus_camera_as_one_source() -> None:
    audio = FileSource(DATA / "speech/utterances/pocketsphinx_goforward/goforward.wav")
    camera = CameraSource(DATA / "video/imageio_test_handwave.webm", fps=60)
    source = CombinedSource(audio, camera)
    assert source.outputs == ("audio", "video")
    pipe = Pipeline(LoopClock())
    a, v = pipe.edge("a", 8), pipe.edge("v", 1, Policy.LATEST)
    sa, sv = Collector("sa"), Collector("sv")
    pipe.add(source, outputs={"audio": a, "video": v})
    pipe.add(sa, inputs={"in": a})
    pipe.add(sv, inputs={"in": v})
    await pipe.run()
    chunks = [p for p in sa.items if isinstance(p, Packet)]
    frames = [p for p in sv.items if isinstance(p, Packet)]
    assert len(chunks) == 140  # 2.79 s of 20 ms chunks
    assert len(frames) > 30
    assert camera.frames == 94
    # both on the one shared clock: the first frame is grabbed within the first audio second
    assert abs(frames[0].pts - chunks[0].pts) < 1_000_000_000


def test_overlapping_ports_rejected() -> None:
    wav = DATA / "speech/utterances/jfk/jfk.wav"
    with pytest.raises(ValueError, match="written by"):
        CombinedSource(FileSource(wav, name="a"), FileSource(wav, name="b"))
