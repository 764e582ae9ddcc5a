"""Source stage fed by a WebSocket client's media (``audio.append`` / ``video.frame``).

The server's receive loop calls :meth:`WsSource.push_audio` / :meth:`WsSource.push_video`
for every decoded frame; the stage's ``run`` forwards them on its output ports:

- ``"audio"``: ``Packet[AudioChunk]`` (16 kHz mono float32), ``pts`` = capture time on the
  shared clock. Audio is **never dropped**: ``push_audio`` waits while the stage's inbox is
  full, so a pipeline that falls behind slows the client's upload (TCP backpressure).
- ``"video"``: ``Packet[VideoFrame]`` (BGR uint8), LATEST: a frame the pipeline has not taken
  yet is superseded by the next one (counted as ``ws.video.dropped``).

Capture times: the client stamps each frame on its own clock (``capture_ns`` = first sample
/ the frame). A :class:`~streamkit.core.clockmap.ClockMapper` per media kind learns offset and
drift from (capture end, arrival) pairs (the lower envelope: queueing only ever adds delay).
Audio is anchored once through it (``pts = to_shared(capture_end) - duration``, never later
than the arrival) and then *chained on the client's sample clock*: a frame whose ``seq`` and
``capture_ns`` continue the previous one starts exactly where it ended. So backpressure or
network jitter never bends the audio timeline; a real hole in the client's capture (its
``capture_ns`` jumps by more than ``snap_ns``) re-anchors through the mapper. Chaining
ignores the client's clock drift (tens of ppm: milliseconds per minute). When sustained
delay has bent the mapper's fit (|drift| > ``MAX_DRIFT_PPM``), the least delay seen (zero
drift) anchors instead.

Audio at another rate (the Realtime endpoint's 24 kHz) is resampled here to the ASR's 16 kHz
with a streaming soxr resampler (HQ: a linear-phase polyphase filter, its state kept across
frames, so chunk boundaries leave no clicks), before the clock mapping, so both endpoints share
one timeline. :meth:`WsSource.input_ns` maps a shared-clock time back to the client's own
audio timeline (what Realtime calls ``audio_start_ms``). :meth:`WsSource.push_image` takes a
still image (a Realtime ``input_image``) as a video frame seen at its arrival.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Clock, LoopClock, Nanos
from streamkit.core.clockmap import ClockMapper
from streamkit.core.edge import Edge, EdgeClosed, Policy
from streamkit.core.media import ASR_SAMPLE_RATE, AudioChunk, VideoFrame, samples_to_ns
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet, SeqTracker
from streamkit.core.stage import StageContext
from streamkit.transport.protocol import AudioAppend, ProtocolError, VideoFrameIn

__all__ = ["MAX_DRIFT_PPM", "WsSource"]

MAX_DRIFT_PPM = 500.0
"""A fitted drift beyond this is an artefact of sustained delay, not a real clock (ppm)."""


class WsSource:
    """A pipeline source whose media comes from one WebSocket client.

    Args:
        metrics: the session's registry (counters ``ws.audio.*`` / ``ws.video.*``).
        clock: the shared clock (default: the loop clock).
        audio_capacity: audio chunks buffered before ``push_audio`` waits.
        snap_ns: contiguity tolerance for audio timestamps (ns).
        video: whether the ``"video"`` output port is offered.
    """

    name = "ws_source"

    def __init__(
        self,
        metrics: MetricsRegistry,
        clock: Clock | None = None,
        *,
        audio_capacity: int = 256,
        snap_ns: Nanos = 30 * NS_PER_MS,
        video: bool = True,
    ) -> None:
        self.metrics = metrics
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.outputs: tuple[str, ...] = ("audio", "video") if video else ("audio",)
        self.snap_ns = snap_ns
        self._audio: Edge[AudioChunk] = Edge("ws.audio.in", audio_capacity, Policy.BLOCK)
        self._video: Edge[VideoFrame] = Edge("ws.video.in", 1, Policy.LATEST)
        # the inbox shows in the session's edge stats: audio still here is not yet in the
        # pipeline (a client waiting for its last answer watches it drain)
        metrics.watch_edges(lambda: (self._audio.stats(), self._video.stats()))
        # Backpressure (a pipeline still loading, a busy machine) delays arrivals for seconds:
        # that is delay, not a device clock jump, so the jump detector is set far out.
        self._audio_map = ClockMapper(jump_ns=60 * NS_PER_S)
        self._video_map = ClockMapper(jump_ns=60 * NS_PER_S)
        self._audio_seq = SeqTracker()
        self._video_seq = SeqTracker()
        self._last_end: Nanos | None = None
        self._last_seq: int | None = None
        self._last_capture_end: Nanos | None = None
        self._least: dict[str, Nanos] = {}
        self._out_seq = {"audio": 0, "video": 0}
        self.samples_in = 0
        self._resampler: Any = None
        self._resampler_rate = 0
        self._anchors: deque[tuple[Nanos, Nanos]] = deque(maxlen=64)  # (pts, client ns)

    # -- fed by the server's receive loop ------------------------------------------------

    async def push_audio(self, frame: AudioAppend) -> ProtocolError | None:
        """Queue one audio frame (waits while the pipeline is behind; never drops).

        Returns an ``invalid_state`` error once the source has ended (the pipeline is gone).
        """
        if self._audio.closed:
            return ProtocolError("invalid_state", "the session's pipeline has ended")
        now = self.clock.now()
        samples = self._resample(frame.samples, frame.header.sample_rate)
        n = len(samples)
        if n == 0:
            return None  # the resampler's first few input samples: output follows
        duration = samples_to_ns(n, ASR_SAMPLE_RATE)
        capture = frame.header.capture_ns
        capture_end = capture + duration
        self._audio_map.observe(capture_end, now)
        self._least["audio"] = min(self._least.get("audio", now - capture_end), now - capture_end)
        chained = (
            self._last_seq is not None
            and frame.header.seq == self._last_seq + 1
            and self._last_capture_end is not None
            and self._last_end is not None
            and abs(capture - self._last_capture_end) <= self.snap_ns
        )
        if chained:
            assert self._last_end is not None
            pts = self._last_end  # contiguous on the client's sample clock
        else:  # first frame, or the client's own clock says there is a hole: re-anchor
            pts = min(self._map(self._audio_map, capture_end), now) - duration
            if self._last_end is not None and pts < self._last_end:
                pts = self._last_end
            self._anchors.append((pts, capture))
        self._last_capture_end = capture_end
        lost = self._audio_seq.observe(frame.header.seq)
        if lost:
            self.metrics.counter("ws.audio.lost_chunks").inc(lost)
        self._last_seq = frame.header.seq
        self._last_end = pts + duration
        self.samples_in += n
        self.metrics.counter("ws.audio.samples").inc(n)
        self.metrics.counter("ws.audio.chunks").inc()
        packet = Packet("audio", self._next("audio"), pts, duration, AudioChunk(samples))
        try:
            await self._audio.put(packet)
        except EdgeClosed:
            return ProtocolError("invalid_state", "the session's pipeline has ended")
        return None

    def _resample(self, samples: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
        if rate == ASR_SAMPLE_RATE:
            return samples
        if self._resampler is None or self._resampler_rate != rate:
            import soxr

            self._resampler = soxr.ResampleStream(rate, ASR_SAMPLE_RATE, 1, "float32", "HQ")
            self._resampler_rate = rate
        out = self._resampler.resample_chunk(samples)
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def input_ns(self, t: Nanos) -> Nanos:
        """Shared-clock ``t`` on the client's own audio timeline (its ``capture_ns``)."""
        anchor = next(((p, c) for p, c in reversed(self._anchors) if p <= t), None)
        if anchor is None:
            anchor = self._anchors[0] if self._anchors else (t, 0)
        return anchor[1] + (t - anchor[0])

    def push_image(self, data: bytes, pts: Nanos | None = None) -> ProtocolError | None:
        """Queue one still image (JPEG/PNG bytes) seen at ``pts`` (None: now), like a frame."""
        if "video" not in self.outputs:
            return ProtocolError("invalid_state", "this session's pipeline takes no images")
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            return ProtocolError("invalid_image", "the image does not decode (JPEG or PNG)")
        now = self.clock.now()
        stamp = now if pts is None else min(pts, now)
        self.metrics.counter("ws.video.frames").inc()
        image: npt.NDArray[np.uint8] = np.asarray(decoded, dtype=np.uint8)
        packet = Packet("video", self._next("video"), stamp, 0, VideoFrame(image, source="image"))
        if not self._video.closed:
            self._video.put_nowait(packet)
        return None

    def push_video(self, frame: VideoFrameIn) -> ProtocolError | None:
        """Decode and queue one video frame (LATEST); an undecodable JPEG is an error."""
        if "video" not in self.outputs:
            return None
        buf = np.frombuffer(frame.jpeg, dtype=np.uint8)
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if decoded is None:
            return ProtocolError("invalid_image", "the JPEG in video.frame does not decode")
        image: npt.NDArray[np.uint8] = np.asarray(decoded, dtype=np.uint8)
        now = self.clock.now()
        capture = frame.header.capture_ns
        self._video_map.observe(capture, now)
        self._least["video"] = min(self._least.get("video", now - capture), now - capture)
        pts = min(self._map(self._video_map, capture, "video"), now)
        self._video_seq.observe(frame.header.seq)
        self.metrics.counter("ws.video.frames").inc()
        packet = Packet("video", self._next("video"), pts, 0, VideoFrame(image, source="ws"))
        if not self._video.closed:
            self._video.put_nowait(packet)
        return None

    async def flushed(self) -> None:
        """Wait until every audio chunk pushed so far was handed to the pipeline."""
        while len(self._audio) and not self._audio.closed:
            await self.clock.sleep(NS_PER_MS)

    def _map(self, mapper: ClockMapper, device_ns: Nanos, kind: str = "audio") -> Nanos:
        """The mapper's estimate while its drift is plausible, else the least-delay offset.

        Sustained backpressure (every arrival late for seconds) bends the lower-envelope fit
        into an absurd drift; real clocks are within ±``MAX_DRIFT_PPM``.
        """
        if mapper.ready and abs(mapper.drift_ppm) <= MAX_DRIFT_PPM:
            return mapper.to_shared(device_ns)
        if mapper.ready:
            self.metrics.counter(f"ws.{kind}.map_fallbacks").inc()
        return device_ns + self._least[kind]

    def end(self) -> None:
        """The client stopped sending (or left): the outputs end after what is queued."""
        self._audio.close()
        self._video.close()

    @property
    def video_dropped(self) -> int:
        return self._video.stats().dropped

    # -- the stage -----------------------------------------------------------------------

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(self._end_on_stop(ctx))
            async with asyncio.TaskGroup() as forwarders:
                forwarders.create_task(self._forward(self._audio, ctx, "audio"))
                if ctx.has_output("video"):
                    forwarders.create_task(self._forward(self._video, ctx, "video"))
            watcher.cancel()

    async def _end_on_stop(self, ctx: StageContext) -> None:
        await ctx.wait_stopping()
        self.end()

    async def _forward(self, edge: Edge[Any], ctx: StageContext, port: str) -> None:
        out = ctx.output(port)
        async for item in edge:
            if isinstance(item, Packet):
                await out.put(item)
        if port == "video":
            self.metrics.counter("ws.video.dropped").inc(edge.stats().dropped)

    def _next(self, stream: str) -> int:
        seq = self._out_seq[stream]
        self._out_seq[stream] = seq + 1
        return seq
