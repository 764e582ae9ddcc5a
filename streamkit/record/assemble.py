"""Assembling real media files into one multi-turn timeline, and playing it at capture pace.

Used to build recorded sessions without devices (the bundled demo session, test sessions,
``streamkit record --file``): each :class:`Segment` contributes its audio (decoded with PyAV,
resampled to 16 kHz mono float32) and its video (a clip's frames, or a still image), followed
by ``pause`` seconds of silence while the last frame stays on screen. :func:`assemble` turns
the segments into packets on a timeline starting at 0; :class:`TimelineSource` emits them as a
source stage (ports ``audio`` / ``video``), each packet when it would have been fully captured
(``base_time + pts + duration`` on the shared clock), so a recorder sees real arrival jitter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_S, Nanos, from_seconds
from streamkit.core.media import ASR_SAMPLE_RATE, AudioChunk, VideoFrame, samples_to_ns
from streamkit.core.packet import Packet
from streamkit.core.stage import StageContext
from streamkit.sources.media_io import load_audio

__all__ = ["Segment", "TimelineSource", "assemble", "decode_video"]

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp"}


def decode_video(
    path: str | Path, max_width: int = 640
) -> list[tuple[Nanos, npt.NDArray[np.uint8]]]:
    """Frames of ``path`` as (time from the first frame in ns, BGR image); a still → one frame."""
    path = Path(path)
    if path.suffix.lower() in _IMAGE_EXT:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image {path}")
        return [(0, _fit(np.asarray(image, np.uint8), max_width))]
    frames: list[tuple[Nanos, npt.NDArray[np.uint8]]] = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            return []
        stream = container.streams.video[0]
        base = stream.time_base or Fraction(1, 1)
        t0: Nanos | None = None
        for frame in container.decode(video=0):
            t = round(float((frame.pts or 0) * base) * NS_PER_S)
            t0 = t if t0 is None else t0
            bgr: npt.NDArray[np.uint8] = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
            frames.append((t - t0, _fit(bgr, max_width)))
    return frames


def _fit(image: npt.NDArray[np.uint8], max_width: int) -> npt.NDArray[np.uint8]:
    if image.shape[1] <= max_width:
        return image
    scale = max_width / image.shape[1]
    size = (max_width, round(image.shape[0] * scale))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)


@dataclass(frozen=True)
class Segment:
    """One turn: ``audio`` (any media file) and ``video`` (clip or still image; default: the
    audio file's own video, else the previous frame), then ``pause`` seconds of silence."""

    audio: Path | None = None
    video: Path | None = None
    pause: float = 1.5
    lead: float = 0.0


def assemble(
    segments: Sequence[Segment],
    *,
    chunk_ms: int = 20,
    fps: float = 10.0,
    source: str = "timeline",
) -> list[Packet[Any]]:
    """Packets of the whole timeline (pts from 0), audio and video interleaved by pts.

    Audio is contiguous (silence between turns), in ``chunk_ms`` chunks; video is sampled at
    ``fps`` (the frame on screen at each sample time; held through pauses).
    """
    audio_parts: list[npt.NDArray[np.float32]] = []
    frames: list[tuple[Nanos, npt.NDArray[np.uint8]]] = []  # (start time, image)
    t: Nanos = 0
    for seg in segments:
        lead = np.zeros(round(seg.lead * ASR_SAMPLE_RATE), np.float32)
        audio = load_audio(seg.audio) if seg.audio is not None else np.zeros(0, np.float32)
        video_path = seg.video if seg.video is not None else seg.audio
        clip = decode_video(video_path) if video_path is not None else []
        pause = np.zeros(round(seg.pause * ASR_SAMPLE_RATE), np.float32)
        body = max(len(audio), 0)
        start = t + samples_to_ns(len(lead), ASR_SAMPLE_RATE)
        frames.extend((start + ft, img) for ft, img in clip)
        audio_parts.extend([lead, audio, pause])
        t += samples_to_ns(len(lead) + body + len(pause), ASR_SAMPLE_RATE)
    samples = np.concatenate(audio_parts) if audio_parts else np.zeros(0, np.float32)
    packets: list[Packet[Any]] = []
    step = ASR_SAMPLE_RATE * chunk_ms // 1000
    for seq, i in enumerate(range(0, len(samples), step)):
        chunk = np.ascontiguousarray(samples[i : i + step])
        pts = samples_to_ns(i, ASR_SAMPLE_RATE)
        packets.append(
            Packet("audio", seq, pts, samples_to_ns(len(chunk), ASR_SAMPLE_RATE),
                   AudioChunk(chunk, ASR_SAMPLE_RATE))
        )
    if frames:
        frames.sort(key=lambda f: f[0])
        period = from_seconds(1.0 / fps)
        k = 0
        for seq, ft in enumerate(range(frames[0][0], t, period)):
            while k + 1 < len(frames) and frames[k + 1][0] <= ft:
                k += 1
            packets.append(Packet("video", seq, ft, period, VideoFrame(frames[k][1], source)))
    packets.sort(key=lambda p: (p.pts + p.duration, p.stream))
    return packets


class TimelineSource:
    """A source stage playing assembled packets at capture pace (ports ``audio``/``video``).

    Each packet is emitted at ``base_time + pts + duration`` (when it would have been fully
    captured) and restamped ``pts += base_time``. Stops early when the pipeline drains.
    """

    outputs: tuple[str, ...] = ("audio", "video")

    def __init__(self, packets: Sequence[Packet[Any]], name: str = "timeline") -> None:
        self.name = name
        self.packets = list(packets)

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        ports = {s: ctx.output(s) for s in ("audio", "video") if ctx.has_output(s)}
        base = ctx.base_time
        for packet in self.packets:
            if ctx.stopping:
                return
            port = ports.get(packet.stream)
            if port is None:
                continue
            await ctx.clock.sleep_until(base + packet.pts + packet.duration)
            await port.put(
                Packet(packet.stream, packet.seq, base + packet.pts, packet.duration,
                       packet.payload, packet.epoch, packet.lineage)
            )



