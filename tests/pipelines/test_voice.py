"""The assistant speaks: real Whisper, a scripted LM, the real Piper voice, virtual time.

The voice sits between the responder and the client (``pipelines/voice.py``): the answer's
audio comes out as ``ResponseAudio`` on the shared clock, our Whisper hears the answer in it,
and a user who starts speaking during the answer cuts the voice and the history keeps only
what was heard.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from streamkit.asr.run import ArraySource
from streamkit.asr.textnorm import wer
from streamkit.asr.whisper import DecodeOptions, WhisperModelShared
from streamkit.core.clock import NS_PER_S
from streamkit.core.events import ResponseAudio, ResponseAudioDone, ResponseDone, SpeechStarted
from streamkit.core.operators import Collector
from streamkit.lm import ScriptedBackend
from streamkit.lm.load import LMSpec
from streamkit.pipelines.assistant import AssistantConfig, Models, build
from streamkit.tts.backend import pcm16_samples
from streamkit.tts.piper import PiperConfig, PiperEngine

pytestmark = [pytest.mark.slow]

ANSWER = (
    "The weather is sunny today. It will be warm in the afternoon, with a light wind from the "
    "west. Tomorrow will be cloudy, and it may rain in the evening."
)
CONFIG = AssistantConfig(compute="virtual", lm=LMSpec(engine="none"), vision=False)


@pytest.fixture(scope="module")
def whisper() -> WhisperModelShared:
    return WhisperModelShared(CONFIG.asr.whisper)


@pytest.fixture(scope="module")
def voice() -> PiperEngine:
    return PiperEngine(PiperConfig(deterministic=True, mode="virtual"))


def speech(data_dir: Path, name: str) -> np.ndarray:
    audio, rate = sf.read(data_dir / "speech/utterances" / name, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return soxr.resample(audio, rate, 16_000).astype(np.float32)


def heard_by_whisper(whisper: WhisperModelShared, chunks: list[ResponseAudio]) -> str:
    rate = chunks[0].sample_rate
    audio = np.concatenate([pcm16_samples(c.pcm) for c in chunks])
    audio16 = soxr.resample(audio, rate, 16_000).astype(np.float32)
    return str(whisper.decode_window(audio16, options=DecodeOptions(beam_size=5)).text)


@pytest.mark.looptime
async def test_the_answer_is_spoken_on_the_shared_clock(
    whisper: WhisperModelShared, voice: PiperEngine, data_dir: Path
) -> None:
    lm = ScriptedBackend(reply=ANSWER, token_ns=20_000_000)
    models = Models(whisper=whisper, lm=lm, tts=voice)
    question = speech(data_dir, "pocketsphinx_goforward/goforward.wav")
    silence = np.zeros(16_000 * 12, np.float32)  # room for the answer to be spoken
    sink = Collector()
    pipe, controls = build(CONFIG, models, ArraySource(np.concatenate([question, silence])), sink)
    assert controls.speaks
    await pipe.run()
    payloads = sink.payloads()
    chunks = [p for p in payloads if isinstance(p, ResponseAudio)]
    [done] = [p for p in payloads if isinstance(p, ResponseAudioDone)]
    [answer] = [p for p in payloads if isinstance(p, ResponseDone)]
    assert answer.text == ANSWER
    assert not done.cancelled
    assert done.text == "".join(c.text for c in chunks) == ANSWER
    assert all(c.sample_rate == 22_050 for c in chunks)
    assert all(b.pts >= a.pts + a.duration for a, b in itertools.pairwise(chunks))
    assert wer([ANSWER], [heard_by_whisper(whisper, chunks)]) <= 0.2
    # the voice starts soon after the end of speech (virtual time: the charged compute)
    uid = answer.utterance_id
    lineage = pipe.metrics.lineage.get(uid)
    assert lineage["lm.first_token"] <= lineage["tts.first_audio"]
    assert lineage["tts.first_audio"] - lineage["lm.first_token"] < 2 * NS_PER_S
    assert [t.assistant for t in models_history(controls)] == [ANSWER.strip()]


def models_history(controls: object) -> list:  # type: ignore[type-arg]
    return list(controls._responder.history)  # type: ignore[attr-defined]


@pytest.mark.looptime
async def test_talking_over_the_voice_cuts_it_and_the_history_keeps_what_was_heard(
    whisper: WhisperModelShared, voice: PiperEngine, data_dir: Path
) -> None:
    lm = ScriptedBackend(reply=ANSWER, token_ns=20_000_000)
    models = Models(whisper=whisper, lm=lm, tts=voice)
    first = speech(data_dir, "pocketsphinx_goforward/goforward.wav")
    second = speech(data_dir, "cmu_arctic/cmu_arctic_us_aew_a0003.wav")
    gap = np.zeros(16_000 * 3, np.float32)  # the user speaks again ~2 s into the answer
    tail = np.zeros(16_000 * 10, np.float32)
    sink = Collector()
    source = ArraySource(np.concatenate([first, gap, second, tail]))
    pipe, controls = build(CONFIG, models, source, sink)
    await pipe.run()
    packets = sink.packets
    dones = [p for p in packets if isinstance(p.payload, ResponseAudioDone)]
    cut = dones[0].payload
    assert cut.cancelled
    assert cut.reason == "barge-in"
    assert ANSWER.startswith(cut.text)
    assert 0 < len(cut.text) < len(ANSWER)
    # nothing of the first answer was sent after the cut: every frame sent had its playout
    # time at most the lead (200 ms) after the moment the voice stopped
    first = [p.payload for p in packets if isinstance(p.payload, ResponseAudio)
             and p.payload.response_id == cut.response_id]
    assert first
    assert max(c.pts for c in first) <= cut.end + 200_000_000
    assert sum(c.duration for c in first if c.pts <= cut.end) >= cut.played_ns
    assert any(isinstance(p.payload, SpeechStarted) and p.payload.t <= cut.end for p in packets)
    history = models_history(controls)
    assert history[0].assistant == cut.text.strip() + " …"
