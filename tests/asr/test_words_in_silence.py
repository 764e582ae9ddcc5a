"""Words Whisper places where there is no speech (issue 12, bug 1: "1. 1. 2. 3." through the
server): a zero-length repeat in the silence after the speech, and a first word stretched
back over the left context before its utterance's speech started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamkit.asr.core import AsrCore, DecodeJob
from streamkit.asr.whisper import DecodedWord, DecodeResult
from streamkit.core.clock import NS_PER_MS, NS_PER_S
from streamkit.core.events import SpeechStarted, TranscriptFinal
from tests.asr.test_asr_core import BASE, RATE, drain, finals, ideal_decode, make_core, signal


def _with_ghost(job: DecodeJob) -> DecodeResult:
    """The ideal decode plus a zero-length copy of its last word 0.2 s after it."""
    result = ideal_decode(job)
    if not result.words:
        return result
    last = result.words[-1]
    ghost = DecodedWord(last.text, last.end + 0.2, last.end + 0.2, 0.5)
    duration = len(job.audio) / RATE
    words = [*result.words, ghost] if ghost.start < duration - 0.05 else result.words
    return DecodeResult(words, result.text, result.avg_logprob, result.no_speech_prob,
                        result.compression_ratio, result.temperature)


def _run(core: AsrCore, audio: np.ndarray, decode: Any) -> list[Any]:
    out: list[Any] = []
    for begin in range(0, len(audio), 320):
        out += core.push(audio[begin : begin + 320], BASE + begin * NS_PER_S // RATE)
        out += drain(core, decode)
    return out + core.finish() + drain(core)


def test_a_zero_length_word_in_trailing_silence_is_not_committed() -> None:
    out = _run(make_core(), signal(4.0), _with_ghost)
    text = " ".join(f.text for f in finals(out) if f.text)
    assert text == "go forward ten meters now"


def test_no_word_starts_before_its_utterance_began() -> None:
    """A decoder that stretches the window's first word back to the window start."""

    def stretched(job: DecodeJob) -> DecodeResult:
        result = ideal_decode(job)
        if result.words:
            first = result.words[0]
            result.words[0] = DecodedWord(first.text, 0.0, first.end, first.probability)
        return result

    core = make_core(left_context_s=2.0)
    out = _run(core, signal(4.0), stretched)
    started = {o.uid: o.payload.t for o in out if isinstance(o.payload, SpeechStarted)}
    preroll = round(core.config.preroll_s * NS_PER_S)
    for final in finals(out):
        for word in final.words:
            assert word.start >= started[final.utterance_id] - preroll - NS_PER_MS, word


@pytest.mark.slow
def test_browser_pcm16_of_one_two_three_gives_each_word_once(data_dir: Path) -> None:
    """Real Whisper on the int16 samples a browser sends (the page's worklet scales by
    32767/32768): before the fix a pause decode said "2. 2." and the end of speech
    committed both."""
    from streamkit.asr.core import AsrConfig
    from streamkit.asr.run import stream_array
    from streamkit.asr.whisper import WhisperModelShared
    from streamkit.sources.media_io import load_audio
    from streamkit.testing.virtual import run_virtual

    audio = load_audio(data_dir / "speech/utterances/sr_english/english.wav")
    pcm = np.trunc(np.where(audio < 0, audio * 32768, audio * 32767)).astype(np.int16)
    samples = (pcm.astype(np.float32) / 32768).astype(np.float32)
    model = WhisperModelShared()
    run = run_virtual(stream_array(samples, model, AsrConfig(compute="virtual",
                                                             charge_ns=100 * NS_PER_MS)))
    events = [p.payload for _, p in run.events]
    finals_ = [e for e in events if isinstance(e, TranscriptFinal) and e.text]
    assert [w.text for f in finals_ for w in f.words] == ["1.", "2.", "3."]
    started = {e.utterance_id: e.t for e in events if isinstance(e, SpeechStarted)}
    for final in finals_:
        for word in final.words:
            assert word.start >= started[final.utterance_id] - 300 * NS_PER_MS
