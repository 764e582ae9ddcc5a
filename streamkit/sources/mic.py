"""Microphone source (sounddevice / PortAudio) with capture times on the shared clock.

Threads and ownership: PortAudio calls :meth:`MicSource._callback` on its own thread. The
callback never blocks and never allocates more than one block: it copies the block (mixed to
mono) with its timing into a bounded ring (``collections.deque(maxlen=ring_blocks)``; when
full the oldest block is overwritten and counted as an overrun) and wakes the event loop with
``loop.call_soon_threadsafe`` (at most one pending wake-up). Everything else runs on the loop.

Timestamps: PortAudio reports, per block, ``inputBufferAdcTime`` (capture time of the first
sample) and ``currentTime`` (callback time), both on the stream's clock (often
``CLOCK_REALTIME`` or ``CLOCK_MONOTONIC``, not ours). The callback also reads the shared clock
(``loop.time()``, thread-safe for a real loop). A :class:`~streamkit.core.clockmap.ClockMapper` fits
``currentTime → shared`` (offset + drift, robust to late callbacks), and the block's pts is
``to_shared(inputBufferAdcTime)``: ``pts_method = "adc_time"``. When the host API gives no ADC
time (0 or not increasing) the fallback is arrival time minus the stream's reported input
latency: ``pts_method = "arrival_minus_latency"``. :class:`AudioTimeline` turns the block
estimates into contiguous 16 kHz chunks (python-soxr resampling, drift slewing, gaps).

Metrics (``source.<name>.*``): ``overruns`` (ring overwrites + PortAudio input overflows),
``gaps``, ``slips``, gauges ``drift_ppm``, ``timeline_error_ns``, ``mapper_residual_ns`` and
``pts_adc_time`` (1: ADC time, 0: fallback; the method is also ``MicSource.pts_method``).
Missing PortAudio or device → :class:`MicError` saying what to install or pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_S, LoopClock, Nanos
from streamkit.core.clockmap import ClockMapper
from streamkit.core.media import ASR_SAMPLE_RATE
from streamkit.core.packet import Gap, Packet
from streamkit.core.stage import StageContext
from streamkit.sources.timeline import AudioTimeline

__all__ = ["MicError", "MicSource", "list_input_devices"]


class MicError(RuntimeError):
    """The microphone cannot be opened; the message says what to install or pass."""


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as error:  # PortAudio shared library missing
        raise MicError(
            f"PortAudio is not available ({error}); install it: `apt install libportaudio2` "
            "(Debian/Ubuntu) or `brew install portaudio` (macOS)"
        ) from error
    return sounddevice


def list_input_devices() -> list[str]:
    """Names of the input devices PortAudio sees, as ``"index: name"``."""
    sd = _sounddevice()
    return [
        f"{i}: {d['name']}"
        for i, d in enumerate(sd.query_devices())
        if int(d.get("max_input_channels", 0)) > 0
    ]


@dataclass(frozen=True, slots=True)
class _Block:
    samples: npt.NDArray[np.float32]
    adc_ns: Nanos
    callback_ns: Nanos
    arrival_ns: Nanos
    overflow: bool


class MicSource:
    """Live microphone → port ``"audio"`` (16 kHz mono float32, contiguous pts).

    Args:
        device: PortAudio device index or (part of its) name; None = default input.
        samplerate: device rate to open (None = the device's default rate).
        block_ms: PortAudio block length (ms).
        chunk_ms: output chunk length (ms) at 16 kHz.
        ring_blocks: capacity of the callback → loop ring (blocks).
        name: stage name.
    """

    outputs: tuple[str, ...] = ("audio",)

    def __init__(
        self,
        device: int | str | None = None,
        *,
        samplerate: int | None = None,
        block_ms: int = 20,
        chunk_ms: int = 20,
        ring_blocks: int = 64,
        name: str = "mic",
    ) -> None:
        self.device = device
        self.name = name
        self.block_ms = block_ms
        self.chunk = ASR_SAMPLE_RATE * chunk_ms // 1000
        self.requested_rate = samplerate
        self.samplerate = 0
        self.pts_method = "unknown"
        self.mapper = ClockMapper(window=256)
        self.timeline: AudioTimeline | None = None
        self.overruns = 0
        self.blocks = 0
        self.metadata: dict[str, Any] = {"kind": "mic", "device": device}
        self._ring: deque[_Block] = deque(maxlen=ring_blocks)
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: Any = None
        self._latency_ns: Nanos = 0
        self._last_adc: float = -math.inf

    # -- setup: open the device ----------------------------------------------------------

    async def setup(self, ctx: StageContext) -> None:
        if not isinstance(ctx.clock, LoopClock):
            raise MicError(
                "MicSource stamps capture times with the event loop's clock (loop.time()); "
                f"run the pipeline on LoopClock (the default), not {type(ctx.clock).__name__}"
            )
        sd = _sounddevice()
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as error:
            devices = "; ".join(list_input_devices()) or "none"
            raise MicError(
                f"no input device {self.device!r} ({error}). Input devices: {devices}. "
                "Pass --device <index or name>"
            ) from error
        channels = max(1, min(2, int(info["max_input_channels"])))
        rate = int(self.requested_rate or info["default_samplerate"])
        self.samplerate = rate
        self._loop = asyncio.get_running_loop()
        try:
            self._stream = sd.InputStream(
                device=self.device,
                channels=channels,
                samplerate=rate,
                dtype="float32",
                blocksize=max(1, rate * self.block_ms // 1000),
                callback=self._callback,
            )
        except sd.PortAudioError as error:
            raise MicError(
                f"cannot open input device {info['name']!r} at {rate} Hz: {error}. "
                "Pass another --device or --samplerate"
            ) from error
        self._latency_ns = round(float(self._stream.latency) * NS_PER_S)
        self.timeline = AudioTimeline(rate, self.chunk)
        self.metadata.update(
            device_name=info["name"],
            samplerate=rate,
            channels=channels,
            input_latency_ns=self._latency_ns,
        )

    # -- PortAudio thread ----------------------------------------------------------------

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio thread: copy, stamp, hand off. Never blocks (deque ops are atomic)."""
        loop = self._loop
        if loop is None:
            return
        arrival = round(loop.time() * NS_PER_S)
        mono = indata.mean(axis=1, dtype=np.float32) if indata.shape[1] > 1 else indata[:, 0]
        block = _Block(
            samples=np.array(mono, dtype=np.float32),
            adc_ns=round(float(time_info.inputBufferAdcTime) * NS_PER_S),
            callback_ns=round(float(time_info.currentTime) * NS_PER_S),
            arrival_ns=arrival,
            overflow=bool(status.input_overflow),
        )
        if len(self._ring) == self._ring.maxlen:
            self.overruns += 1  # the oldest block is overwritten
        self._ring.append(block)
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                loop.call_soon_threadsafe(self._wake.set)

    # -- loop side -----------------------------------------------------------------------

    async def run(self, ctx: StageContext) -> None:
        if self._stream is None or self.timeline is None:
            raise MicError("MicSource.run before setup")
        out = ctx.output("audio")
        metrics = ctx.metrics
        prefix = f"source.{self.name}"
        self._stream.start()
        try:
            while not ctx.stopping:
                await ctx.wait_or_stopping(self._wake)
                self._wake.clear()
                self._wake_pending = False
                while self._ring:
                    block = self._ring.popleft()
                    for item in self._process(block):
                        await out.put(item)
                metrics.counter(f"{prefix}.overruns").value = self.overruns
                metrics.gauge(f"{prefix}.drift_ppm").set(
                    self.mapper.drift_ppm if self.mapper.ready else 0.0
                )
                metrics.gauge(f"{prefix}.mapper_residual_ns").set(
                    self.mapper.residual_ns if len(self.mapper) else 0
                )
                metrics.gauge(f"{prefix}.timeline_error_ns").set(self.timeline.last_error_ns)
                metrics.gauge(f"{prefix}.pts_adc_time").set(float(self.pts_method == "adc_time"))
                metrics.counter(f"{prefix}.gaps").value = self.timeline.gaps
                metrics.counter(f"{prefix}.slips").value = self.timeline.slips
        finally:
            self._stream.stop()
            self._stream.close()
            for item in self.timeline.finish():
                await out.put(item)

    def _process(self, block: _Block) -> list[Packet[Any] | Gap]:
        assert self.timeline is not None
        self.blocks += 1
        if block.overflow:
            self.overruns += 1
        pts = self._capture_time(block)
        return self.timeline.feed(block.samples, pts)

    def _capture_time(self, block: _Block) -> Nanos:
        adc_ok = (
            block.adc_ns > 0
            and block.callback_ns > 0
            and block.adc_ns / NS_PER_S > (self._last_adc)
        )
        if adc_ok and self.pts_method != "arrival_minus_latency":
            self._last_adc = block.adc_ns / NS_PER_S
            self.mapper.observe(block.callback_ns, block.arrival_ns)
            self.pts_method = "adc_time"
            self.metadata["pts_method"] = self.pts_method
            return self.mapper.to_shared(block.adc_ns)
        self.pts_method = "arrival_minus_latency"
        self.metadata["pts_method"] = self.pts_method
        return block.arrival_ns - self._latency_ns

