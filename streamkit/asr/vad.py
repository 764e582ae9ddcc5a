"""Voice activity detection: Silero VAD (shipped in faster-whisper) run in streaming mode.

Two parts, kept apart:

- :class:`SileroVad` turns 16 kHz samples into one speech probability per 512-sample
  window (32 ms), carrying the model's recurrent state and context across calls, so feeding a
  file in any chunking gives exactly the probabilities of one offline pass. It owns an
  ONNX session (~0.1 ms of CPU per window; called inline, it never blocks for long).
- :class:`VadSegmenter` is pure: probabilities in, :class:`VadEvent` out (speech start,
  short pause, end of speech after a hangover) with hysteresis (``threshold`` to start,
  below ``neg_threshold`` counts as silence).

Times here are sample indices on the stream (the caller maps them to shared-clock ns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["WINDOW", "SileroVad", "VadConfig", "VadEvent", "VadSegmenter"]

WINDOW = 512
"""Samples per VAD window at 16 kHz (32 ms)."""
_CONTEXT = 64


class SileroVad:
    """Streaming Silero VAD: ``probs(samples)`` → one probability per completed window.

    Samples that do not fill a window are kept for the next call. Not thread-safe; one
    instance per stream (the ONNX session itself is shared, loaded once per process).
    """

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session: Any = get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def probs(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Speech probabilities (0–1) of the windows completed by ``samples``."""
        data = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        n_windows = len(data) // WINDOW
        self._pending = np.array(data[n_windows * WINDOW :], dtype=np.float32)
        if n_windows == 0:
            return np.zeros(0, dtype=np.float32)
        blocks = np.asarray(data[: n_windows * WINDOW], dtype=np.float32).reshape(-1, WINDOW)
        contexts = np.concatenate([self._context[None], blocks[:-1, -_CONTEXT:]], axis=0)
        batch = np.concatenate([contexts, blocks], axis=1)
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = blocks[-1, -_CONTEXT:].copy()
        return np.asarray(out, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class VadConfig:
    """Segmentation thresholds; durations in seconds.

    ``pause_s``: silence that marks a pause inside an utterance (the ASR commits there);
    ``hangover_s``: silence that ends the utterance; ``min_speech_s``: voiced time needed
    before a start is declared (0 = the first voiced window starts speech at once).
    """

    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_s: float = 0.0
    pause_s: float = 0.25
    hangover_s: float = 0.5
    sample_rate: int = 16_000


@dataclass(frozen=True)
class VadEvent:
    """``kind`` at window boundary ``sample`` (the window's first sample).

    ``start``: speech began at ``sample``; ``pause``: silence since ``sample`` lasted
    ``pause_s``; ``resume``: speech again after a pause; ``end``: silence since ``sample``
    lasted ``hangover_s`` — the utterance is over (``sample`` = end of voiced audio).
    """

    kind: Literal["start", "pause", "resume", "end"]
    sample: int


class VadSegmenter:
    """Pure hysteresis state machine over window probabilities."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        rate = self.config.sample_rate
        self._pause_windows = max(1, round(self.config.pause_s * rate / WINDOW))
        self._end_windows = max(1, round(self.config.hangover_s * rate / WINDOW))
        self._min_windows = max(1, round(self.config.min_speech_s * rate / WINDOW))
        self.position = 0  # next window's first sample
        self.in_speech = False
        self._voiced_run = 0
        self._silence_run = 0
        self._silence_start = 0
        self._run_start = 0
        self._paused = False

    @property
    def silence_start(self) -> int | None:
        """First sample of the current silence inside speech, or None while voiced."""
        return self._silence_start if self.in_speech and self._silence_run else None

    def force_end(self) -> None:
        """Forget the current utterance (after a forced commit): wait for new speech."""
        self.in_speech = False
        self._voiced_run = 0
        self._silence_run = 0
        self._paused = False

    def push(self, probs: npt.NDArray[np.float32]) -> list[VadEvent]:
        """Feed consecutive window probabilities; return the events they cause, in order."""
        cfg = self.config
        events: list[VadEvent] = []
        for prob in probs.tolist():
            start = self.position
            self.position += WINDOW
            if not self.in_speech:
                if prob >= cfg.threshold:
                    if self._voiced_run == 0:
                        self._run_start = start
                    self._voiced_run += 1
                    if self._voiced_run >= self._min_windows:
                        self.in_speech = True
                        self._silence_run = 0
                        self._paused = False
                        events.append(VadEvent("start", self._run_start))
                else:
                    self._voiced_run = 0
                continue
            if prob < cfg.neg_threshold or (self._silence_run and prob < cfg.threshold):
                if self._silence_run == 0:
                    self._silence_start = start
                self._silence_run += 1
                if self._silence_run == self._pause_windows and not self._paused:
                    self._paused = True
                    events.append(VadEvent("pause", self._silence_start))
                if self._silence_run >= self._end_windows:
                    events.append(VadEvent("end", self._silence_start))
                    self.in_speech = False
                    self._voiced_run = 0
                    self._silence_run = 0
                    self._paused = False
            else:
                if self._paused:
                    events.append(VadEvent("resume", start))
                self._paused = False
                self._silence_run = 0
        return events
