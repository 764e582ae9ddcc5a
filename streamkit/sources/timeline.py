"""Device audio blocks with estimated capture times → contiguous 16 kHz chunks (pure).

A capture device delivers blocks of samples at its own rate; each block comes with an
*estimate* of its first sample's capture time on the shared clock (ADC time mapped by a
:class:`~streamkit.core.clockmap.ClockMapper`, or arrival minus latency). Downstream wants
audio with **contiguous** pts (``next.pts == prev.end``) that nevertheless stays on the shared
clock.
:class:`AudioTimeline` reconciles the two:

- samples are resampled to 16 kHz with python-soxr (streaming, delay-compensated) and cut
  into fixed chunks whose pts follow the sample count from an anchor (exact integer ns);
- each block's estimated capture time is compared with where the timeline puts it
  (``error``); decisions use the **median of the last ``smooth`` errors**, so one late
  callback or a noisy latency report moves nothing. A median error beyond ``deadband_ns``
  (clock drift) is slewed back to within a quarter of it by inserting or dropping **one**
  16 kHz sample (62.5 µs, inaudible) at most every ``slew_every`` blocks — about 195 ppm
  at 20 ms blocks, above real crystal drift, far below what would smear the waveform;
- a median error beyond ``resync_ns`` forward means samples were lost (overrun, device stall)
  or the estimate moved for good: the run is closed, a :class:`~streamkit.core.packet.Gap` is
  emitted and the timeline restarts at the block's capture time. A large backward error cannot
  move pts back: it is counted and slewed away.

Not thread-safe; no clock reads.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from streamkit.core.clock import NS_PER_MS, Nanos
from streamkit.core.media import ASR_SAMPLE_RATE, AudioChunk, samples_to_ns
from streamkit.core.packet import Gap, Packet

__all__ = ["AudioTimeline"]


class AudioTimeline:
    """Blocks at ``in_rate`` → ``Packet[AudioChunk]`` of ``chunk`` samples at 16 kHz.

    Args:
        in_rate: device sample rate (Hz).
        chunk: samples per output chunk at 16 kHz (320 = 20 ms).
        stream: output stream name.
        deadband_ns: timeline error tolerated without slewing.
        resync_ns: forward error treated as lost samples (gap + restart).
    """

    def __init__(
        self,
        in_rate: int,
        chunk: int = 320,
        *,
        stream: str = "audio",
        deadband_ns: Nanos = 2 * NS_PER_MS,
        resync_ns: Nanos = 30 * NS_PER_MS,
        smooth: int = 9,
        slew_every: int = 16,
    ) -> None:
        if in_rate <= 0 or chunk <= 0:
            raise ValueError("in_rate and chunk must be > 0")
        self.in_rate = in_rate
        self.chunk = chunk
        self.stream = stream
        self.deadband_ns = deadband_ns
        self.resync_ns = resync_ns
        self.slew_every = slew_every
        self._errors: deque[Nanos] = deque(maxlen=smooth)
        self._since_slew = 0
        self._slewing = False
        self.seq = 0
        self.gaps = 0
        self.slips = 0
        self.backward_jumps = 0
        self.last_error_ns: Nanos = 0
        self.max_abs_error_ns: Nanos = 0
        self._anchor: Nanos | None = None
        self._in = 0  # input samples in this run
        self._out = 0  # 16 kHz samples emitted in this run (slips included)
        self._slip = 0  # net inserted (+) / dropped (-) 16 kHz samples in this run
        self._buf: npt.NDArray[np.float32] = np.zeros(0, np.float32)
        self._soxr: Any = None

    def feed(self, samples: npt.NDArray[np.float32], capture_ns: Nanos) -> list[Packet[Any] | Gap]:
        """Add one block (mono float32 at ``in_rate``) whose first sample was captured at
        ``capture_ns``; return the chunks (and gaps) now complete, in order."""
        out: list[Packet[Any] | Gap] = []
        direction = 0
        if self._anchor is None:
            self._start(capture_ns)
        else:
            self._errors.append(capture_ns - self._expected())
            error = round(statistics.median(self._errors))
            self.last_error_ns = error
            self.max_abs_error_ns = max(self.max_abs_error_ns, abs(error))
            self._since_slew += 1
            if len(self._errors) < min(5, self._errors.maxlen or 1):
                pass  # too few estimates since the (re)start to judge
            elif error > self.resync_ns:
                estimate = self._expected() + error  # smoothed capture time of this block
                out += self.finish()
                end = self._end()
                out.append(Gap(self.stream, end, estimate, "capture samples lost"))
                self.gaps += 1
                self._start(estimate)
            elif error < -self.resync_ns:
                self.backward_jumps += 1
                direction = -1
            else:
                # hysteresis: start slewing beyond the deadband, stop well inside it
                limit = self.deadband_ns // 4 if self._slewing else self.deadband_ns
                direction = 1 if error > limit else -1 if error < -limit else 0
                self._slewing = direction != 0
        self._in += len(samples)
        self._push(np.asarray(samples, dtype=np.float32), last=False)
        if direction:
            self._slew(direction)  # on the new block's samples: the buffer is never empty
        out += self._cut(final=False)
        return out

    def finish(self) -> list[Packet[Any] | Gap]:
        """Close the current run: drain the resampler and emit the remainder."""
        if self._anchor is None:
            return []
        self._push(np.zeros(0, np.float32), last=True)
        out = self._cut(final=True)
        return out

    # -- internals -----------------------------------------------------------------------

    def _start(self, capture_ns: Nanos) -> None:
        if self._anchor is not None:
            capture_ns = max(capture_ns, self._end())
        self._anchor = capture_ns
        self._errors.clear()
        self._in = self._out = self._slip = 0
        self._buf = np.zeros(0, np.float32)
        self._soxr = None
        if self.in_rate != ASR_SAMPLE_RATE:
            self._soxr = soxr.ResampleStream(self.in_rate, ASR_SAMPLE_RATE, 1, dtype="float32")

    def _expected(self) -> Nanos:
        """Where the timeline puts the next input sample (ns)."""
        assert self._anchor is not None
        return (
            self._anchor
            + samples_to_ns(self._in, self.in_rate)
            + samples_to_ns(self._slip, ASR_SAMPLE_RATE)
        )

    def _end(self) -> Nanos:
        assert self._anchor is not None
        return self._anchor + samples_to_ns(self._out, ASR_SAMPLE_RATE)

    def _slew(self, direction: int) -> None:
        if self._since_slew < self.slew_every:
            return
        self._since_slew = 0
        if direction > 0:
            last = self._buf[-1:] if len(self._buf) else np.zeros(1, np.float32)
            self._buf = np.concatenate((self._buf, last))
            self._slip += 1
            self.slips += 1
        elif len(self._buf):
            self._buf = self._buf[:-1]
            self._slip -= 1
            self.slips += 1

    def _push(self, samples: npt.NDArray[np.float32], *, last: bool) -> None:
        if self._soxr is not None:
            samples = self._soxr.resample_chunk(samples, last=last)
        if len(samples):
            self._buf = np.concatenate((self._buf, samples))

    def _cut(self, *, final: bool) -> list[Packet[Any] | Gap]:
        out: list[Packet[Any] | Gap] = []
        while len(self._buf) >= self.chunk or (final and len(self._buf)):
            n = min(self.chunk, len(self._buf))
            samples, self._buf = self._buf[:n].copy(), self._buf[n:]
            pts = self._end()
            self._out += n
            out.append(Packet(self.stream, self.seq, pts, self._end() - pts, AudioChunk(samples)))
            self.seq += 1
        return out
