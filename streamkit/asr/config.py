"""Streaming ASR settings and the small records the policy core exchanges (pure data).

:class:`AsrConfig` configures :class:`~streamkit.asr.core.AsrCore` and the stage;
:class:`DecodeJob` is one window the core asks to decode; :class:`AsrOutput` one event it
emits. Times are shared-clock ns; durations in the config are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from streamkit.asr.hypothesis import CommitPolicy
from streamkit.asr.vad import VadConfig
from streamkit.asr.whisper import DecodeOptions, WhisperConfig
from streamkit.core.clock import Nanos
from streamkit.core.compute import ComputeMode
from streamkit.core.events import SpeechStarted, SpeechStopped, TranscriptFinal, TranscriptPartial
from streamkit.turn.core import TurnConfig

__all__ = ["AsrConfig", "AsrEvent", "AsrOutput", "DecodeJob", "JobKind"]

JobKind = Literal["partial", "pause", "final"]
AsrEvent = SpeechStarted | SpeechStopped | TranscriptPartial | TranscriptFinal


@dataclass(frozen=True)
class AsrConfig:
    """Streaming ASR settings (durations in seconds).

    ``compute``: ``"thread"`` live, ``"virtual"`` on a virtual-time loop; ``charge_ns``: fixed
    virtual cost per decode (bit-identical replays; None = measured wall time of the call;
    ``charge_cpu``: its process CPU time instead — an uncontended machine). ``max_gap_s``: a hole
    in the input up to this long is filled with silence, a longer one ends the utterance.
    ``commit``: when the words of a partial or pause decode are committed (LocalAgreement
    with probability-dependent agreement, see :class:`CommitPolicy`); ``final_beam_size``,
    ``pause_beam_size``: beam widths of final and pause decodes (partials use
    ``decode.beam_size``); the pause decode is greedy since leave-one-source-out chose it at
    the 96 ms pause decode of a turn for every held-out source (``bench/asr_loso.py``: WER gap to
    offline -0.4 points pooled vs +0.2 with beam 5, and ~25% less CPU on the turn's critical
    path); at the plain ASR's 250 ms pause both widths make the same errors.
    ``final_cover_s``: a pause pass whose last word ends more than this before the last
    voiced audio (or that lost words the pass before it heard) does not settle the
    utterance: the end of speech decodes it again.
    ``utterance_context_s``: how far back (s) a new utterance's first window may start,
    at the end of a committed word of the one before (0: not before that one's speech
    ended). ``left_context_s``: already committed audio kept before a new window.
    ``busy_tick_s``: the partial-decode interval while the shared model is saturated
    (every worker busy, so a new call would queue): a session then waits for the model
    instead of queueing a partial, unless this much audio is undecoded — fewer, wider
    partials under load; pause and final decodes are never deferred (None: always
    ``tick_s``).
    ``turn``: the end-of-turn policy (``turn_detection`` ``vad`` | ``smart`` and its
    thresholds, :class:`~streamkit.turn.core.TurnConfig`); None: the VAD hangover alone ends
    an utterance and no turn events are emitted (transcription without a conversation).
    """

    whisper: WhisperConfig = field(default_factory=WhisperConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    final_beam_size: int = 5
    pause_beam_size: int = 1
    compute: ComputeMode = "thread"
    charge_ns: Nanos | None = None
    charge_cpu: bool = False
    tick_s: float = 0.65
    busy_tick_s: float | None = 1.0
    commit: CommitPolicy = field(default_factory=CommitPolicy)
    preroll_s: float = 0.3
    left_context_s: float = 2.0
    max_window_s: float = 6.0
    context_chars: int = 200
    partials: bool = True
    max_gap_s: float = 2.0
    final_cover_s: float = 0.3
    utterance_context_s: float = 0.0
    turn: TurnConfig | None = None


@dataclass(frozen=True)
class AsrOutput:
    """One event to emit: ``stream`` (``speech``/``transcript``), ``pts`` (ns), payload, id."""

    stream: str
    pts: Nanos
    payload: AsrEvent
    uid: str


@dataclass
class DecodeJob:
    """One window to decode: 16 kHz ``audio`` whose first sample is at ``start`` (ns)."""

    uid: str
    kind: JobKind
    audio: npt.NDArray[np.float32]
    start: Nanos
    end: Nanos
    prompt: str
    options: DecodeOptions
    end_sample: int = 0
