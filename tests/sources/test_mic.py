"""MicSource through a real audio server: PulseAudio null sink → monitor → PortAudio → mic.

A real speech file is played into the null sink with ``paplay`` while the microphone source
captures the sink's monitor through sounddevice (PortAudio's ALSA ``pulse`` device). The
captured audio must contain the file (normalised cross-correlation peak), pts must be
contiguous and monotonic on the shared clock, and gaps/overruns are counted.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from streamkit import LoopClock, Packet, Pipeline, StageContext
from streamkit.core.clock import NS_PER_MS, NS_PER_S
from streamkit.core.packet import Gap
from streamkit.sources.mic import MicError, MicSource
from streamkit.sources.timeline import AudioTimeline

SPEECH = Path(__file__).parents[1] / "data/speech/utterances/cmu_arctic/cmu_arctic_us_aew_a0003.wav"


def best_match(signal: np.ndarray, piece: np.ndarray) -> tuple[float, int]:
    """(peak normalised cross-correlation, lag) of ``piece`` inside ``signal`` (FFT)."""
    signal = signal.astype(np.float64)
    piece = piece.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(signal) + len(piece))))
    full = np.fft.irfft(np.fft.rfft(signal, n) * np.conj(np.fft.rfft(piece, n)), n)
    corr = full[: len(signal) - len(piece) + 1]
    local = np.convolve(signal**2, np.ones(len(piece)), mode="valid")
    ref_energy = float(np.sum(piece**2))
    ncc = corr / np.sqrt(np.maximum(local, 1e-3 * ref_energy) * ref_energy)
    lag = int(np.argmax(ncc))
    return float(ncc[lag]), lag


class Sink:
    name = "sink"

    def __init__(self) -> None:
        self.items: list[tuple[int, Any]] = []

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input():
            self.items.append((ctx.clock.now(), item))


@pytest.mark.audio_server
@pytest.mark.slow
async def test_mic_captures_played_speech(pulse_server: dict[str, str]) -> None:
    clock = LoopClock()
    mic = MicSource("pulse", samplerate=48_000)
    sink = Sink()
    pipe = Pipeline(clock)
    edge = pipe.edge("audio", 64)
    pipe.add(mic, outputs={"audio": edge})
    pipe.add(sink, inputs={"in": edge})
    played_at: list[int] = []

    async def play() -> None:
        # wait until the capture runs (opening a PulseAudio stream takes a while on a loaded
        # machine) and the server's initial backlog has drained
        for _ in range(100):
            if len(sink.items) >= 25 and mic.mapper.ready:
                break
            await clock.sleep(100 * NS_PER_MS)
        await clock.sleep(300 * NS_PER_MS)
        played_at.append(clock.now())
        proc = await asyncio.create_subprocess_exec("paplay", str(SPEECH))
        assert await proc.wait() == 0
        await clock.sleep(500 * NS_PER_MS)
        pipe.drain()

    async with asyncio.TaskGroup() as group:
        group.create_task(pipe.run())
        group.create_task(play())

    chunks = [i for _, i in sink.items if isinstance(i, Packet)]
    gaps = [i for _, i in sink.items if isinstance(i, Gap)]
    tl = mic.timeline
    assert tl is not None
    print(
        f"mic: chunks={len(chunks)} gaps={len(gaps)} slips={tl.slips} overruns={mic.overruns} "
        f"blocks={mic.blocks} max_err_us={tl.max_abs_error_ns / 1e3:.0f}"
    )
    assert mic.pts_method == "adc_time"
    assert mic.metadata["pts_method"] == "adc_time"
    assert len(chunks) > 100
    # contiguous pts within runs; every discontinuity is a declared gap
    breaks = sum(1 for a, b in itertools.pairwise(chunks) if b.pts != a.end)
    assert breaks == len(gaps) == mic.timeline.gaps  # type: ignore[union-attr]
    assert all(b.pts > a.pts for a, b in itertools.pairwise(chunks))
    # pts are capture times: never in the future of their arrival, and not far behind
    # (the server may hand over up to ~0.6 s of buffered audio when the stream opens)
    for arrival, item in sink.items:
        if isinstance(item, Packet):
            assert item.end <= arrival + 5 * NS_PER_MS
            assert arrival - item.end < 1_500 * NS_PER_MS

    # every 0.5 s segment of the file is found in the capture (normalised cross-correlation),
    # and where it is found on the shared clock advances by 0.5 s per segment
    captured = np.concatenate([c.payload.samples for c in chunks])
    starts = np.array([c.pts for c in chunks])
    offsets = np.cumsum([0] + [len(c.payload.samples) for c in chunks[:-1]])
    ref, rate = sf.read(SPEECH, dtype="float32")
    assert rate == 16_000
    seg = 8_000
    found: list[tuple[float, int]] = []
    for k in range(len(ref) // seg):
        piece = ref[k * seg : (k + 1) * seg]
        if np.sqrt(np.mean(piece**2)) < 0.01:
            continue  # silence matches anywhere
        ncc, lag = best_match(captured, piece)
        i = int(np.searchsorted(offsets, lag, side="right") - 1)
        pts = int(starts[i] + (lag - offsets[i]) * NS_PER_S // 16_000)
        found.append((ncc, pts - k * seg * NS_PER_S // 16_000))
    assert len(found) >= 4
    # (> 0.85: the timeline may slip one sample inside a segment to follow the server's clock)
    assert min(n for n, _ in found) > 0.85, f"captured audio does not match the file: {found}"
    file_starts = [t for _, t in found]  # where the file's start lies, per segment
    spread = max(file_starts) - min(file_starts)
    assert spread < 10 * NS_PER_MS + sum(g.end - g.start for g in gaps)
    # the file starts after paplay was launched, within the audio server's latency (the
    # median: segments captured before a timeline resync may sit off by that gap)
    start_offset = int(np.median(file_starts)) - played_at[0]
    assert -40 * NS_PER_MS < start_offset < 800 * NS_PER_MS
    print(
        f"mic: ncc_min={min(n for n, _ in found):.4f} start_offset_ms={start_offset / 1e6:.1f} "
        f"segment_spread_us={spread / 1e3:.0f} "
        f"gaps={len(gaps)} overruns={mic.overruns} drift_ppm={mic.mapper.drift_ppm:.1f} "
        f"mapper_residual_us={mic.mapper.residual_ns / 1e3:.1f} "
        f"timeline_max_err_us={mic.timeline.max_abs_error_ns / 1e3:.1f}"  # type: ignore[union-attr]
    )


async def test_missing_device_says_what_to_pass() -> None:
    pipe = Pipeline(LoopClock())
    edge = pipe.edge("audio", 4)
    pipe.add(MicSource("no such microphone"), outputs={"audio": edge})
    with pytest.raises(Exception, match="--device") as info:
        await pipe.run()
    assert isinstance(info.value.__cause__, MicError)


class _Time:
    def __init__(self, adc: float, current: float) -> None:
        self.inputBufferAdcTime = adc
        self.currentTime = current


class _Status:
    def __init__(self, overflow: bool = False) -> None:
        self.input_overflow = overflow


async def test_callback_ring_overruns_and_fallback_pts() -> None:
    """The PortAudio callback path without a device: ring overwrite, overflow flag, and
    the arrival-minus-latency fallback when the host API reports no ADC time."""
    mic = MicSource(ring_blocks=4)
    mic._loop = asyncio.get_running_loop()
    mic.timeline = AudioTimeline(48_000)
    mic._latency_ns = 30 * NS_PER_MS
    block = np.ones((960, 2), np.float32) * 0.5
    for _ in range(6):
        mic._callback(block, 960, _Time(0.0, 0.0), _Status(overflow=False))
    assert len(mic._ring) == 4
    assert mic.overruns == 2  # two oldest blocks overwritten
    first = mic._ring[0]
    assert first.samples.shape == (960,)
    assert float(first.samples[0]) == 0.5  # stereo mixed to mono
    items = mic._process(mic._ring.popleft())
    mic._ring.clear()
    assert mic.pts_method == "arrival_minus_latency"
    assert mic.metadata["pts_method"] == "arrival_minus_latency"
    mic._callback(block, 960, _Time(0.0, 0.0), _Status(overflow=True))
    items += mic._process(mic._ring.popleft())
    assert mic.overruns == 3  # + PortAudio's input-overflow flag
    items += mic.timeline.finish()
    chunks = [i for i in items if isinstance(i, Packet)]
    assert chunks[0].pts == first.arrival_ns - 30 * NS_PER_MS
    assert [c.seq for c in chunks] == list(range(len(chunks)))
