"""The bundled Piper voice, run for real: phonemes, determinism, and what our Whisper hears."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from streamkit.asr.textnorm import wer
from streamkit.core.compute import ModelSlot
from streamkit.tts.espeak import ProcessVoice, ProcessVoiceConfig
from streamkit.tts.phonemes import EspeakPhonemizer, clauses
from streamkit.tts.piper import PiperConfig, PiperEngine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def whisper():  # type: ignore[no-untyped-def]
    from streamkit.asr.whisper import WhisperModelShared

    return WhisperModelShared()


def hear(whisper, samples: np.ndarray, rate: int) -> str:  # type: ignore[no-untyped-def]
    from streamkit.asr.whisper import DecodeOptions

    audio = soxr.resample(samples, rate, 16_000).astype(np.float32)
    return str(whisper.decode_window(audio, options=DecodeOptions(beam_size=5)).text)


def test_clauses_and_a_warm_phonemizer() -> None:
    assert clauses("Yes, it is. ...") == [("Yes", ","), (" it is", ".")]
    phonemizer = EspeakPhonemizer()
    try:
        assert phonemizer.phonemize("hello world") == "həlˈoʊ wˈɜːld"
        # one request may come back as several espeak clauses: still one answer
        assert phonemizer.phonemize("Mr Smith") == phonemizer.phonemize("Mr Smith")
        assert phonemizer.phonemize("   ") == ""
    finally:
        phonemizer.close()


async def test_piper_speaks_deterministically_what_whisper_hears(whisper) -> None:  # type: ignore[no-untyped-def]
    engine = PiperEngine(PiperConfig(deterministic=True))
    assert engine.sample_rate == 22_050
    ids = engine.phoneme_ids("Hi, you.")
    assert ids[0] == engine._ids["^"]
    assert ids[-1] == engine._ids["$"]
    assert engine._ids[","] in ids
    assert engine._ids["."] in ids
    assert all(ids[i] == engine._ids["_"] for i in range(1, len(ids) - 1, 2))
    text = "The capital of France is Paris, a city famous for its art."
    a = np.concatenate([c.samples async for c in engine.synthesize(text)])
    b = np.concatenate([c.samples async for c in engine.synthesize(text)])
    assert np.array_equal(a, b)
    assert 2.0 < len(a) / engine.sample_rate < 6.0
    heard = hear(whisper, a, engine.sample_rate)
    assert wer([text], [heard]) <= 0.2, heard  # tiny.en hears "France is" as "Francis"
    assert engine.slot.calls == 2
    engine.close()


async def test_the_debian_voices_speak_as_separate_processes(whisper) -> None:  # type: ignore[no-untyped-def]
    for program in ("espeak-ng", "flite"):
        voice = ProcessVoice(ProcessVoiceConfig(program=program))
        chunks = [c async for c in voice.synthesize("Two plus two is four.")]
        assert len(chunks) == 1
        assert chunks[0].sample_rate == voice.sample_rate
        heard = hear(whisper, chunks[0].samples, voice.sample_rate).lower()
        assert "four" in heard or "4" in heard, (program, heard)
        assert isinstance(voice.slot, ModelSlot)


def test_a_fixed_charge_per_second_of_speech() -> None:
    """``charge_ns_per_audio_s`` charges a virtual replay by the speech synthesised (50 ms per
    second of audio here), not by the CPU time the machine measured."""
    from streamkit.core.clock import LoopClock
    from streamkit.testing.replay import run_on_virtual_loop

    engine = PiperEngine(
        PiperConfig(deterministic=True, mode="virtual", charge_ns_per_audio_s=50_000_000)
    )

    async def speak() -> tuple[int, int]:
        clock = LoopClock()
        start = clock.now()
        samples = sum([len(c.samples) async for c in engine.synthesize("Hello there, friend.")])
        return clock.now() - start, samples

    try:
        elapsed, samples = run_on_virtual_loop(speak())
    finally:
        engine.close()
    assert samples > engine.sample_rate // 2
    assert elapsed == samples * 50_000_000 // engine.sample_rate
