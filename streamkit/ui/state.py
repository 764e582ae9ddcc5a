"""What the demo shows, as plain data updated from packets (pure: no I/O, no clock reads).

:class:`DemoState` is fed by the app: ``on_media`` with the source's packets (camera frame,
microphone level), ``on_event`` with the pipeline's events (transcripts, observations, answer
tokens), ``set_metrics`` with a metrics snapshot. Renderers (OpenCV window, rich terminal) read
it; they never change it. Owned by the event loop's thread.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import Nanos
from streamkit.core.events import (
    Detection,
    ErrorEvent,
    Observation,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
)
from streamkit.core.media import AudioChunk, VideoFrame
from streamkit.core.metrics import percentile
from streamkit.core.packet import Packet
from streamkit.ui.summary import LatencyRow, latency_rows

__all__ = ["DemoState", "Turn"]


@dataclass
class Turn:
    """One utterance and its answer, as shown: final text, live partial tail, answer text."""

    utterance_id: str
    final: str = ""
    partial: str = ""
    answer: str = ""
    answer_done: bool = False
    cancelled: bool = False
    speech_start: Nanos | None = None
    speech_ns: Nanos = 0
    eos: Nanos | None = None
    """End of speech (the VAD's stop, shared clock ns)."""
    final_at: Nanos | None = None
    """When the utterance's last final reached the demo (shared clock ns)."""
    first_token_at: Nanos | None = None
    """When the answer's first token reached the demo (shared clock ns)."""

    @property
    def eos_to_final_ns(self) -> Nanos | None:
        return None if self.eos is None or self.final_at is None else self.final_at - self.eos

    @property
    def eos_to_first_token_ns(self) -> Nanos | None:
        if self.eos is None or self.first_token_at is None:
            return None
        return self.first_token_at - self.eos


@dataclass
class DemoState:
    """Everything the views draw (see the module docstring)."""

    title: str = "streamkit demo"
    source_label: str = ""
    frame: npt.NDArray[np.uint8] | None = None
    frame_pts: Nanos = 0
    frames: int = 0
    detections: list[Detection] = field(default_factory=list)
    detection_size: tuple[int, int] = (0, 0)
    observation: str = ""
    turns: deque[Turn] = field(default_factory=lambda: deque(maxlen=200))
    speaking: bool = False
    level_db: float = -120.0
    muted: bool = False
    recording: bool = False
    status: str = ""
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    latency: list[LatencyRow] = field(default_factory=list)
    events: int = 0
    finished: bool = False
    details: bool = False
    """Show the per-stage breakdown (the d key) instead of the per-turn headline."""
    finished_note: str = "session finished"

    def turn(self, uid: str) -> Turn:
        """The turn for utterance ``uid`` (created at the end when new)."""
        for t in self.turns:
            if t.utterance_id == uid:
                return t
        t = Turn(uid)
        self.turns.append(t)
        return t

    def on_media(self, packet: Packet[Any]) -> None:
        """A source packet: keep the newest frame, measure the audio level (dBFS)."""
        payload = packet.payload
        if isinstance(payload, VideoFrame):
            self.frame = payload.image
            self.frame_pts = packet.pts
            self.frames += 1
        elif isinstance(payload, AudioChunk) and len(payload.samples):
            rms = float(np.sqrt(np.mean(np.square(payload.samples, dtype=np.float64))))
            self.level_db = 20 * math.log10(max(rms, 1e-6))

    def on_event(self, packet: Packet[Any], at: Nanos | None = None) -> None:
        """A pipeline event (events.py payloads) that reached the demo at ``at`` (ns)."""
        self.events += 1
        p = packet.payload
        if isinstance(p, SpeechStarted):
            self.speaking = True
            self.turn(p.utterance_id).speech_start = p.t
        elif isinstance(p, SpeechStopped):
            self.speaking = False
            t = self.turn(p.utterance_id)
            t.eos = p.t
            if t.speech_start is not None:
                t.speech_ns = max(0, p.t - t.speech_start)
        elif isinstance(p, TranscriptPartial):
            t = self.turn(p.utterance_id)
            t.partial = p.text.strip()
        elif isinstance(p, TranscriptFinal):
            t = self.turn(p.utterance_id)
            text = p.text.strip()
            t.final = f"{t.final} {text}".strip() if text else t.final
            t.partial = ""
            if p.is_last and at is not None:
                t.final_at = at
                t.eos = p.end if t.eos is None else t.eos
        elif isinstance(p, ResponseDelta):
            t = self.turn(p.utterance_id)
            t.answer += p.text
            if t.first_token_at is None and at is not None:
                t.first_token_at = at
        elif isinstance(p, ResponseDone):
            t = self.turn(p.utterance_id)
            t.answer = p.text or t.answer
            t.answer_done, t.cancelled = True, p.cancelled
        elif isinstance(p, Observation):
            self.detections = list(p.detections)
            self.detection_size = (p.width, p.height)
            labels = ", ".join(f"{d.label} {d.score:.2f}" for d in p.detections)
            self.observation = p.summary or labels or f"motion {p.motion:.2f}"
        elif isinstance(p, ErrorEvent):
            self.errors.append(f"{p.code}: {p.message}")

    def set_metrics(self, snapshot: dict[str, Any]) -> None:
        """Take the latency rows of a metrics snapshot."""
        self.latency = latency_rows(snapshot, ("stage.", "e2e.", "model.", "lm."))

    def headline(self) -> dict[str, tuple[int, float, float]]:
        """Per-turn latencies from the end of speech, over the session: name → (n, p50 ms,
        p90 ms), for ``first answer token`` and ``final transcript``."""
        out: dict[str, tuple[int, float, float]] = {}
        for name, values in (
            ("first answer token", [t.eos_to_first_token_ns for t in self.turns]),
            ("final transcript", [t.eos_to_final_ns for t in self.turns]),
        ):
            ms = sorted(v / 1e6 for v in values if v is not None)
            if ms:
                out[name] = (len(ms), percentile(ms, 50), percentile(ms, 90))
        return out

    def hud_rows(self, limit: int = 8) -> list[LatencyRow]:
        """Rows for a compact HUD: per-stage latencies, then end-to-end, skipping idle ones."""
        stage = [r for r in self.latency if r.name.startswith("stage.") and r.p95_ms > 0.05]
        e2e = [r for r in self.latency if r.name.startswith(("e2e.", "lm.")) and r.count]
        rows = stage[: limit // 2] + e2e
        return rows[:limit]
