"""The client source with Realtime input: 24 kHz resampled to 16 kHz, the audio timeline, images.

ManualClock, no socket: the same ``WsSource`` that ``/ws`` feeds, given ``AudioAppend`` frames
stamped by the Realtime codec (``capture_ns`` = position on the client's audio timeline).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np

from streamkit.core.clock import NS_PER_MS, NS_PER_S, ManualClock
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.transport.protocol import AudioAppend, FrameHeader
from streamkit.transport.ws_source import WsSource

RATE = 24_000


def _frames(samples: np.ndarray, chunk: int) -> list[AudioAppend]:
    out = []
    for seq, start in enumerate(range(0, len(samples), chunk)):
        header = FrameHeader(1, 1, 1, RATE, seq, start * NS_PER_S // RATE)
        out.append(AudioAppend(header, samples[start : start + chunk]))
    return out


def _drain(source: WsSource) -> list[Packet]:
    out = []
    while (item := source._audio.get_nowait()) is not None:
        if isinstance(item, Packet):
            out.append(item)
    return out


async def _push(frames: list[AudioAppend], clock: ManualClock, source: WsSource) -> None:
    for frame in frames:
        clock.advance(len(frame.samples) * NS_PER_S // RATE)
        assert await source.push_audio(frame) is None


def _sine(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


async def test_24k_input_reaches_the_asr_at_16k_chunking_does_not_matter() -> None:
    tone = _sine(440.0, 2.0)
    results = []
    for chunk in (2400, 24000, 997):
        clock = ManualClock(5 * NS_PER_S)
        source = WsSource(MetricsRegistry(), clock, audio_capacity=10_000, video=False)
        await _push(_frames(tone, chunk), clock, source)
        packets = _drain(source)
        assert all(p.payload.sample_rate == 16_000 for p in packets)
        audio = np.concatenate([p.payload.samples for p in packets])
        results.append(audio)
        # contiguous on one timeline: each chunk starts where the last ended
        for a, b in itertools.pairwise(packets):
            assert b.pts == a.pts + a.duration
    lengths = [len(a) for a in results]
    assert max(lengths) - min(lengths) <= 64  # only the resampler's tail differs
    # 2 s at 16 kHz, less the filter's delay (soxr HQ: ~12 ms stay inside until more comes)
    assert 0 <= 32_000 - lengths[0] <= 16 * 16
    n = min(lengths)
    assert np.allclose(results[0][:n], results[1][:n], atol=1e-4)  # stream state is kept
    spectrum = np.abs(np.fft.rfft(results[0][2000:18000]))
    peak_hz = np.argmax(spectrum) * 16_000 / 16_000
    assert abs(peak_hz - 440.0) <= 2.0
    # well-kept: nothing aliased or imaged above the tone
    assert spectrum[np.fft.rfftfreq(16000, 1 / 16000) > 1000].max() < 1e-3 * spectrum.max()


async def test_input_ns_maps_shared_clock_back_to_the_audio_timeline() -> None:
    clock = ManualClock(7 * NS_PER_S)
    source = WsSource(MetricsRegistry(), clock, audio_capacity=10_000, video=False)
    await _push(_frames(_sine(300.0, 1.0), 2400), clock, source)
    packets = _drain(source)
    first = packets[0]
    # the first packet's start is (near) timeline 0; 500 ms later on the shared clock is 500 ms
    at_start = source.input_ns(first.pts)
    assert abs(at_start) <= 10 * NS_PER_MS
    assert source.input_ns(first.pts + 500 * NS_PER_MS) - at_start == 500 * NS_PER_MS


async def test_still_image_becomes_a_video_frame_at_its_arrival(data_dir: Path) -> None:
    clock = ManualClock(3 * NS_PER_S)
    source = WsSource(MetricsRegistry(), clock)
    data = (data_dir / "images/imageio_astronaut.png").read_bytes()
    assert source.push_image(data) is None
    item = source._video.get_nowait()
    assert isinstance(item, Packet)
    assert item.pts == clock.now()
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert item.payload.image.shape == expected.shape
    problem = source.push_image(b"not an image")
    assert problem is not None
    assert problem.code == "invalid_image"
    no_video = WsSource(MetricsRegistry(), clock, video=False)
    refused = no_video.push_image(data)
    assert refused is not None
    assert refused.code == "invalid_state"
