"""Media files as a source: audio files (wav, flac, mp3, …) and video files with their audio.

PyAV demuxes and decodes both tracks. The **container's pts are kept** — they are the ground
truth for AV sync — and mapped onto the shared clock as ``ctx.base_time + (pts - origin)``,
where ``origin`` is the container's start time (the same for every track, so a lip-sync
offset in the file is preserved exactly):

- video: one ``Packet[VideoFrame]`` per decoded frame (BGR), ``pts`` = frame pts converted
  exactly to ns (integer arithmetic on the stream time base), ``duration`` = the frame's
  packet duration (or 1/fps);
- audio: mono float32 at 16 kHz (PyAV mixes down, python-soxr resamples, streaming), cut into
  fixed chunks (``chunk_ms``); chunk ``i`` has ``pts = start + samples_to_ns(i·n, 16000)``
  where ``start`` is the first audio frame's pts: exact, contiguous integer ns. A hole in the
  file's audio timestamps (> ``gap_tolerance_ns``) becomes a :class:`~streamkit.core.packet.Gap`
  and the chunk timeline restarts at the frame's pts.

Pacing (``pace=True``): each packet is released when it would have been fully captured live —
audio at ``base + pts + duration``, video at ``base + pts`` — by anchor
(``clock.sleep_until(target)``, never summed sleeps), so a stall downstream is caught up
rather than accumulated. ``pace=False`` releases as fast as the consumers take them. Packets
are released in release-time order across tracks (a small reorder buffer absorbs the
container's interleaving). Decoding runs inline on the loop (small files, cheap codecs); the
source returns at end of file or when the pipeline drains (``ctx.stopping``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import soxr

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.media import ASR_SAMPLE_RATE, AudioChunk, VideoFrame, samples_to_ns
from streamkit.core.packet import Gap, Packet
from streamkit.core.stage import StageContext

__all__ = ["FileSource", "MediaInfo", "probe", "tb_to_ns"]


def tb_to_ns(pts: int, time_base: Fraction) -> Nanos:
    """Container ticks → ns, exact integer arithmetic (floor)."""
    return pts * time_base.numerator * NS_PER_S // time_base.denominator


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a media file holds (from :func:`probe`)."""

    path: str
    has_audio: bool
    has_video: bool
    audio_rate: int = 0
    audio_channels: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    duration_ns: Nanos = 0
    start_ns: Nanos = 0


def probe(path: str | Path) -> MediaInfo:
    """Open ``path`` with PyAV and describe its first audio and video tracks.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file PyAV cannot
    read or that has neither audio nor video.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"media file not found: {path}")
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise ValueError(f"cannot read media file {path}: {error}") from error
    with container:
        audio = container.streams.audio[0] if container.streams.audio else None
        video = container.streams.video[0] if container.streams.video else None
        if audio is None and video is None:
            raise ValueError(f"{path} has neither an audio nor a video track")
        start = container.start_time or 0
        return MediaInfo(
            path=str(path),
            has_audio=audio is not None,
            has_video=video is not None,
            audio_rate=int(audio.rate) if audio is not None else 0,
            audio_channels=int(audio.channels) if audio is not None else 0,
            fps=float(video.average_rate or 0) if video is not None else 0.0,
            width=int(video.width) if video is not None else 0,
            height=int(video.height) if video is not None else 0,
            duration_ns=(container.duration or 0) * NS_PER_S // av.time_base,
            start_ns=start * NS_PER_S // av.time_base,
        )


@dataclass(order=True)
class _Pending:
    release: Nanos
    order: int
    port: str = field(compare=False)
    item: Packet[Any] | Gap = field(compare=False)


class _AudioCutter:
    """Decoded audio frames → 16 kHz mono chunks with exact, contiguous pts (media time)."""

    def __init__(self, rate: int, chunk: int, gap_tolerance_ns: Nanos) -> None:
        self.rate = rate
        self.chunk = chunk
        self.gap_tolerance_ns = gap_tolerance_ns
        self._mix = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self._soxr: Any = None
        self._start: Nanos | None = None  # media time of sample 0 of the current run
        self._in = 0  # input samples consumed in this run
        self._out = 0  # 16 kHz samples emitted in this run
        self._buf: npt.NDArray[np.float32] = np.zeros(0, np.float32)
        self.seq = 0

    def feed(self, frame: av.AudioFrame, frame_ns: Nanos | None) -> list[Packet[Any] | Gap]:
        out: list[Packet[Any] | Gap] = []
        if frame_ns is not None and self._start is not None:
            expected = self._start + samples_to_ns(self._in, self.rate)
            if frame_ns - expected > self.gap_tolerance_ns:
                out += self.finish()
                out.append(Gap("audio", self._run_end(), frame_ns, "hole in the file's audio"))
                self._start = None
        if self._start is None:
            self._start = frame_ns if frame_ns is not None else 0
            self._in = self._out = 0
            self._soxr = None
            if self.rate != ASR_SAMPLE_RATE:
                self._soxr = soxr.ResampleStream(self.rate, ASR_SAMPLE_RATE, 1, dtype="float32")
        for mixed in self._mix.resample(frame):
            samples = mixed.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            self._in += len(samples)
            self._push(samples, last=False)
        out += self._cut(final=False)
        return out

    def finish(self) -> list[Packet[Any] | Gap]:
        """End of the current run: drain the resampler, emit the remainder."""
        if self._start is None:
            return []
        self._push(np.zeros(0, np.float32), last=True)
        return self._cut(final=True)

    def _push(self, samples: npt.NDArray[np.float32], *, last: bool) -> None:
        if self._soxr is not None:
            samples = self._soxr.resample_chunk(samples, last=last)
        if len(samples):
            self._buf = np.concatenate((self._buf, samples))

    def _run_end(self) -> Nanos:
        assert self._start is not None
        return self._start + samples_to_ns(self._out, ASR_SAMPLE_RATE)

    def _cut(self, *, final: bool) -> list[Packet[Any] | Gap]:
        out: list[Packet[Any] | Gap] = []
        while len(self._buf) >= self.chunk or (final and len(self._buf)):
            n = min(self.chunk, len(self._buf))
            samples, self._buf = self._buf[:n].copy(), self._buf[n:]
            pts = self._run_end()
            self._out += n
            dur = self._run_end() - pts
            out.append(Packet("audio", self.seq, pts, dur, AudioChunk(samples)))
            self.seq += 1
        return out


class FileSource:
    """A media file as a pipeline source (see the module docstring).

    Args:
        path: audio or video file (anything FFmpeg reads).
        pace: release in real time on the shared clock (True) or as fast as possible.
        audio / video: emit that track when present (ports ``"audio"`` / ``"video"``).
        chunk_ms: audio chunk length (ms) at 16 kHz.
        name: stage name.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        pace: bool = True,
        audio: bool = True,
        video: bool = True,
        chunk_ms: int = 20,
        gap_tolerance_ns: Nanos = 5 * NS_PER_MS,
        name: str = "file",
    ) -> None:
        self.info = probe(path)
        self.path = Path(path)
        self.pace = pace
        self.name = name
        self.chunk = ASR_SAMPLE_RATE * chunk_ms // 1000
        if self.chunk <= 0:
            raise ValueError(f"chunk_ms must be ≥ 1, got {chunk_ms}")
        self.gap_tolerance_ns = gap_tolerance_ns
        self._want_audio = audio and self.info.has_audio
        self._want_video = video and self.info.has_video
        if not (self._want_audio or self._want_video):
            raise ValueError(f"{self.path}: no selected track (audio={audio}, video={video})")
        self.outputs: tuple[str, ...] = ("audio",) * self._want_audio + ("video",) * (
            self._want_video
        )
        self.metadata: dict[str, Any] = {
            "kind": "file",
            "path": str(self.path),
            "pts_method": "container",
            "audio_rate_in": self.info.audio_rate,
            "fps": self.info.fps,
        }
        self.emitted: dict[str, int] = {"audio": 0, "video": 0}
        self._safe_ns: Nanos = -(1 << 62)

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        heap: list[_Pending] = []
        for order, (port, item, media_ns) in enumerate(self._decode()):
            if ctx.stopping:
                return
            target = ctx.base_time + media_ns
            if isinstance(item, Packet):
                item = Packet(
                    item.stream, item.seq, ctx.base_time + item.pts, item.duration, item.payload
                )
            else:
                item = Gap(
                    item.stream, ctx.base_time + item.start, ctx.base_time + item.end, item.reason
                )
            heapq.heappush(heap, _Pending(target, order, port, item))
            safe = ctx.base_time + self._safe_ns
            while heap and heap[0].release <= safe:
                await self._release(ctx, heapq.heappop(heap))
                if ctx.stopping:
                    return
        while heap:
            await self._release(ctx, heapq.heappop(heap))
            if ctx.stopping:
                return

    async def _release(self, ctx: StageContext, pending: _Pending) -> None:
        if self.pace:
            await ctx.clock.sleep_until(pending.release)
        if ctx.has_output(pending.port):
            await ctx.output(pending.port).put(pending.item)
        if isinstance(pending.item, Packet):
            self.emitted[pending.port] += 1
            ctx.metrics.counter(f"source.{self.name}.{pending.port}_packets").inc()

    def _decode(self) -> Iterator[tuple[str, Packet[Any] | Gap, Nanos]]:
        """Yield (port, item with media-time pts, release media time) in container order.

        Maintains ``self._safe_ns``: every later item is released at or after it.
        """
        origin = self.info.start_ns
        self._safe_ns = -(1 << 62)
        with av.open(str(self.path)) as container:
            streams: list[Any] = []
            cutter: _AudioCutter | None = None
            if self._want_audio:
                a_stream = container.streams.audio[0]
                streams.append(a_stream)
                cutter = _AudioCutter(int(a_stream.rate), self.chunk, self.gap_tolerance_ns)
            default_dur: Nanos = 0
            if self._want_video:
                v_stream = container.streams.video[0]
                streams.append(v_stream)
                if v_stream.average_rate:
                    default_dur = round(NS_PER_S / float(v_stream.average_rate))
            last: dict[str, Nanos] = {s.type: -(1 << 62) for s in streams}
            v_seq = 0
            for packet in container.demux(*streams):
                pkt_dur: Nanos = 0
                if packet.duration and packet.time_base is not None:
                    pkt_dur = tb_to_ns(packet.duration, packet.time_base)
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                        continue
                    frame_ns: Nanos | None = None
                    if frame.pts is not None and frame.time_base is not None:
                        frame_ns = tb_to_ns(frame.pts, frame.time_base) - origin
                    if isinstance(frame, av.VideoFrame):
                        if frame_ns is None:
                            continue
                        image = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
                        payload = VideoFrame(image, source=self.path.name)
                        yield (
                            "video",
                            Packet("video", v_seq, frame_ns, pkt_dur or default_dur, payload),
                            frame_ns,
                        )
                        v_seq += 1
                        last["video"] = frame_ns
                    elif cutter is not None:
                        for out in cutter.feed(frame, frame_ns):
                            last["audio"] = out.end
                            yield "audio", out, out.end
                self._safe_ns = min(last.values())
            if cutter is not None:
                for out in cutter.finish():
                    yield "audio", out, out.end
            self._safe_ns = 1 << 62
