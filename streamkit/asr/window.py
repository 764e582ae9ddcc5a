"""An utterance's window for the streaming ASR: its state, trimming, and decoded words.

Pure helpers of :class:`~streamkit.asr.core.AsrCore` (no model, no clock): the
:class:`Utterance` record, :func:`trim` (keep the window short) and :func:`to_words` (a
decode's words on the shared clock, without those placed where there is no speech).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from streamkit.asr.config import AsrConfig, DecodeJob
from streamkit.asr.hypothesis import HypothesisBuffer, drop_loops
from streamkit.asr.whisper import DecodeResult
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.events import Word

__all__ = ["RATE", "ZERO_LENGTH_NS", "Utterance", "to_words", "trim"]

RATE = 16_000
ZERO_LENGTH_NS = 20 * NS_PER_MS
"""A decoded word shorter than this has no audio under it (Whisper's zero-length tokens)."""


@dataclass
class Utterance:
    """One utterance's audio window and hypothesis (sample indices are stream samples)."""

    uid: str
    start_sample: int  # VAD start
    buf_start: int  # stream sample index of buf[0]
    buf: npt.NDArray[np.float32]
    hyp: HypothesisBuffer = field(default_factory=HypothesisBuffer)
    decoded_upto: int = 0  # stream sample index covered by the last job
    last_voiced: int = 0  # end sample of the last voiced window
    pause_at: int | None = None  # sample where a pause was detected (pending pause decode)
    silence_start: int | None = None
    voiced_end: int | None = None
    ended: bool = False
    settled: bool = False  # every voiced window is covered by a pause/final decode
    finals: int = 0

    @property
    def buf_end(self) -> int:
        return self.buf_start + len(self.buf)


def to_words(job: DecodeJob, result: DecodeResult, silent_from: Nanos) -> list[Word]:
    """The decode's words on the shared clock, without those Whisper placed where there
    is no speech: past the end of the audio, or with no duration in audio the VAD had
    already classed as silence (``silent_from``: the end of the last voiced window).

    The second kind is a hallucinated repeat of the last word in trailing silence: the
    server's PCM16 audio of "one two three" made a pause decode say "1. 1." with a
    zero-length second "1." at 0.66 s (speech stopped at 0.45 s), which the end of
    speech then committed (bug 1 of issue 12; float audio happened to decode right).
    """
    duration = len(job.audio) / RATE
    words: list[Word] = []
    for w in drop_loops(result.words):
        if w.start >= duration - 0.04:
            continue  # "heard" past the end of the audio: a hallucinated continuation
        start = job.start + round(w.start * NS_PER_S)
        end = min(job.end, job.start + round(w.end * NS_PER_S))
        if end - start < ZERO_LENGTH_NS and start >= silent_from:
            continue  # no audio under it, and that audio is silence: not a word
        words.append(Word(w.text, start, max(start, end), round(w.probability, 4)))
    return words


def trim(utt: Utterance, config: AsrConfig, sample_of: Callable[[Nanos], int]) -> None:
    """Keep the window short: past ``max_window_s``, cut at a committed word end that
    leaves about ``left_context_s`` of already-committed audio as context. Audio that was
    decoded and gave no word for ``2 × max_window_s`` is let go as well (keeps memory
    and compute bounded on long non-speech the VAD took for speech)."""
    limit = int(config.max_window_s * RATE)
    if len(utt.buf) <= limit:
        return
    sample = utt.buf_start
    end = utt.hyp.committed_end
    if end is not None:
        target = end - round(config.left_context_s * NS_PER_S)
        ends = [w.end for w in utt.hyp.prior + utt.hyp.committed if w.end <= target]
        sample = sample_of(max(ends) if ends else end)
    if sample <= utt.buf_start and len(utt.buf) > 2 * limit:
        sample = min(utt.decoded_upto, utt.buf_end - limit)
    sample = min(sample, utt.buf_end)
    if sample <= utt.buf_start:
        return
    utt.buf = utt.buf[sample - utt.buf_start :].copy()
    utt.buf_start = sample
    utt.decoded_upto = max(utt.decoded_upto, sample)
