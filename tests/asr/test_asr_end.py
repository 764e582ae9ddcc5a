"""The end of an utterance never loses words (AsrCore with a fake VAD and fake decoders).

Regression: "What is the largest ocean on Earth?" (tests/data/regressions/) committed "What
is the" and "largest", then a pause decode hallucinated a second copy of the sentence, the
first copy's words got no duration, and the end of speech trusted that pause pass: an empty
final, "ocean on Earth" gone. The real-model regression test is in test_asr_real.py.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.asr.core import AsrCore, AsrOutput, DecodeJob
from streamkit.asr.whisper import DecodedWord, DecodeResult
from streamkit.core.clock import NS_PER_S
from streamkit.core.events import SpeechStopped, TranscriptFinal, TranscriptPartial
from tests.asr.test_asr_core import BASE, RATE, drain, finals, make_core

Script = list[tuple[str, float, float]]  # word, start s, end s (stream time)


def audio_of(script: Script, seconds: float) -> npt.NDArray[np.float32]:
    audio = np.zeros(int(seconds * RATE), dtype=np.float32)
    for _, start, end in script:
        audio[int(start * RATE) : int(end * RATE)] = 0.3
    return audio


def heard(script: Script, job: DecodeJob) -> list[DecodedWord]:
    """The ideal decode: the words fully inside the window, times from its start."""
    t0 = (job.start - BASE) / NS_PER_S
    t1 = (job.end - BASE) / NS_PER_S
    return [DecodedWord(w, s - t0, e - t0, 0.9) for w, s, e in script if s >= t0 - 0.01 and e <= t1]


def result(words: list[DecodedWord], rejected: str = "") -> DecodeResult:
    return DecodeResult(words, " ".join(w.text for w in words), -0.1, 0.01, 1.0, 0.0, rejected)


def stream(
    core: AsrCore, audio: npt.NDArray[np.float32], decode: Callable[[DecodeJob], DecodeResult]
) -> list[AsrOutput]:
    """Push ``audio`` in 20 ms packets, running every job at once with ``decode(job)``."""
    out: list[AsrOutput] = []
    for begin in range(0, len(audio), 320):
        out += core.push(audio[begin : begin + 320], BASE + begin * NS_PER_S // RATE)
        out += drain(core, decode)
    return out


SENTENCE: Script = [
    ("what", 0.50, 0.75),
    ("is", 0.80, 0.95),
    ("the", 1.00, 1.15),
    ("largest", 1.20, 1.60),
    ("ocean", 1.65, 2.00),
    ("on", 2.05, 2.20),
    ("earth", 2.25, 2.60),
]


def text(out: list[AsrOutput]) -> str:
    return " ".join(f.text for f in finals(out) if f.text)


def test_a_pause_pass_that_lost_the_last_words_does_not_settle() -> None:
    """The pause pass hears only the first words (its copy of the rest had no duration):
    the end of speech decodes again instead of committing that pass's empty tail."""
    kinds: list[str] = []

    def decode(job: DecodeJob) -> DecodeResult:
        kinds.append(job.kind)
        words = heard(SENTENCE, job)
        if job.kind == "pause":
            words = [w for w in words if w.text in ("what", "is", "the", "largest")]
        return result(words)

    core = make_core()
    out = stream(core, audio_of(SENTENCE, 4.0), decode)
    out += core.finish()
    assert kinds[-1] == "final"
    assert text(out) == "what is the largest ocean on earth"
    assert finals(out)[-1].is_last


def test_a_pause_pass_that_heard_everything_settles_without_a_final_decode() -> None:
    kinds: list[str] = []

    def decode(job: DecodeJob) -> DecodeResult:
        kinds.append(job.kind)
        return result(heard(SENTENCE, job))

    core = make_core()
    out = stream(core, audio_of(SENTENCE, 4.0), decode)
    assert "pause" in kinds
    assert "final" not in kinds  # nothing left to decode: the end commits the tail at once
    assert text(out) == "what is the largest ocean on earth"


def test_a_rejected_final_pass_keeps_what_the_previous_pass_heard() -> None:
    """The final decode comes back empty (a no-speech guard): the words the last pass
    heard and did not yet commit are committed, not dropped."""

    def decode(job: DecodeJob) -> DecodeResult:
        if job.kind == "final":
            return result([], rejected="no_speech")
        return result(heard(SENTENCE, job))

    core = make_core(partials=True)
    audio = audio_of(SENTENCE, 4.0)
    out = stream(core, audio[: int(2.7 * RATE)], decode)  # speech, no pause yet
    out += core.commit()  # the client's input.commit: a final decode at once
    out += drain(core, decode)
    assert finals(out)[-1].is_last
    last = [o.payload for o in out if isinstance(o.payload, TranscriptPartial)][-1]
    assert last.text  # the last partial heard words it did not commit
    assert text(out) == f"{last.committed} {last.text}".strip()


FAULTS = ("ideal", "drop_last", "drop_two", "reject", "loop")


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    """2–7 words of 0.3–0.6 s with 0.05–0.2 s between them, maybe one 0.3–0.45 s pause."""
    n = draw(st.integers(2, 7))
    pause_after = draw(st.integers(0, n))  # n: no pause
    t = draw(st.floats(0.4, 0.8))
    script: Script = []
    for i in range(n):
        length = draw(st.floats(0.3, 0.6))
        script.append((f"w{i}", round(t, 3), round(t + length, 3)))
        t += length + draw(st.floats(0.05, 0.2))
        if i == pause_after:
            t += draw(st.floats(0.3, 0.45))
    return script


@settings(max_examples=60, deadline=None)
@given(script=scripts(), data=st.data())
def test_finals_cover_every_word_a_final_offline_pass_finds_at_the_end(
    script: Script, data: st.DataObject
) -> None:
    """Property: partial and pause passes may lose their last words, come back empty, or
    add a zero-length repeat (what tiny.en does); the final offline pass over the same
    audio (the ideal decode) is right. Every word that pass finds after the last word the
    utterance committed before its speech stopped is in the utterance's finals."""

    def decode(job: DecodeJob) -> DecodeResult:
        words = heard(script, job)
        if job.kind == "final":
            return result(words)
        fault = data.draw(st.sampled_from(FAULTS), label=f"{job.kind} pass")
        if fault == "drop_last":
            words = words[:-1]
        elif fault == "drop_two":
            words = words[:-2]
        elif fault == "reject":
            return result([], rejected="low_confidence")
        elif fault == "loop" and words:
            end = words[-1].end
            words = words + [DecodedWord(w.text, end, end, 0.9) for w in words[:3]]
        return result(words)

    core = make_core()
    end_s = script[-1][2] + 1.0
    out = stream(core, audio_of(script, end_s), decode)
    out += core.finish()
    out += drain(core, decode)
    stopped = next(i for i, o in enumerate(out) if isinstance(o.payload, SpeechStopped))
    before = [
        w for o in out[:stopped] if isinstance(o.payload, TranscriptFinal) for w in o.payload.words
    ]
    committed_end = max((w.end for w in before), default=0)
    said = {(w.text, w.start, w.end) for f in finals(out) for w in f.words}
    offline = [(w, BASE + round(s * NS_PER_S), BASE + round(e * NS_PER_S)) for w, s, e in script]
    missing = [w for w in offline if w[2] > committed_end and w not in said]
    assert not missing, (missing, text(out))
    assert finals(out)[-1].is_last


def test_without_utterance_context_a_new_window_never_rehears_the_last_utterance() -> None:
    """utterance_context_s=0: the next utterance's first window starts after the last one's
    speech ended, so its words are never heard twice ("Three. Three.")."""
    script: Script = [("three", 0.5, 0.9), ("look", 1.8, 2.1), ("in", 2.15, 2.3)]
    starts: list[tuple[str, int]] = []

    def decode(job: DecodeJob) -> DecodeResult:
        starts.append((job.uid, job.start))
        # Whisper ends a word early: "three" is said until 0.9 s, its time says 0.65 s
        words = heard(script, job)
        return result([DecodedWord(w.text, w.start, w.end - 0.25, 0.9) for w in words])

    for context, rehears in ((0.0, False), (2.0, True)):
        starts.clear()
        core = make_core(utterance_context_s=context)
        out = stream(core, audio_of(script, 3.5), decode)
        second = min(t for uid, t in starts if uid == "t-2")
        assert (second < BASE + round(0.85 * NS_PER_S)) == rehears
        assert text(out) == "three look in"
