"""The ASR stage with turn detection on virtual time: real speech with pauses, real VAD,
a stand-in decoder and a scripted end-of-turn model (fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from streamkit.asr.core import AsrConfig
from streamkit.asr.run import ArraySource, CollectSink
from streamkit.asr.stage import AsrStage
from streamkit.asr.turn import AsrTurn, backstop_vad
from streamkit.asr.vad import VadConfig
from streamkit.asr.whisper import DecodedWord, DecodeOptions, DecodeResult
from streamkit.core.clock import NS_PER_MS, Clock
from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.core.edge import Policy
from streamkit.core.events import SpeechStopped, TranscriptFinal, TurnUpdate
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.sources.media_io import load_audio
from streamkit.turn.backend import TurnModel, TurnUnavailable
from streamkit.turn.core import TurnConfig
from tests.asr.test_asr_stage import EnergyModel

MS = NS_PER_MS


@dataclass
class ScriptedTurn:
    """A TurnModel that answers ``probability`` (or a function of the audio length)."""

    probability: float = 0.97
    name: str = "scripted_turn"
    sample_rate: int = 16_000
    max_audio_s: float = 8.0
    seen: list[int] = field(default_factory=list)
    _slot: ModelSlot | None = None

    def predict(self, audio: npt.NDArray[np.float32]) -> float:
        self.seen.append(len(audio))
        return self.probability

    def slot(self, clock: Clock, mode: ComputeMode = "thread", metrics: Any = None) -> ModelSlot:
        if self._slot is None:
            self._slot = ModelSlot("turn", clock, mode, metrics)
        return self._slot


async def transcribe(
    audio: npt.NDArray[np.float32], turn: TurnConfig | None, model: TurnModel | None
) -> list[tuple[int, Any]]:
    config = AsrConfig(compute="virtual", charge_ns=50 * MS, decode=DecodeOptions(), turn=turn)
    asr = AsrStage(EnergyModel(), config, turn_model=model)  # type: ignore[arg-type]
    return await run_stage(asr, audio)


async def run_stage(asr: AsrStage, audio: npt.NDArray[np.float32]) -> list[tuple[int, Any]]:
    """``audio`` through ``asr`` on the virtual clock: (arrival time, event) at the sink."""
    sink = CollectSink()
    pipeline = Pipeline(metrics=MetricsRegistry())
    a = pipeline.edge("audio", 64, Policy.BLOCK)
    e = pipeline.edge("events", 64, Policy.BLOCK)
    pipeline.add(ArraySource(audio), outputs={"audio": a})
    pipeline.add(asr, inputs={"in": a}, outputs={"out": e})
    pipeline.add(sink, inputs={"in": e})
    await pipeline.run()
    base = pipeline.state.base_time or 0
    return [(t - base, p.payload) for t, p in sink.received]


def ends(events: list[tuple[int, Any]]) -> list[tuple[int, SpeechStopped]]:
    return [(t, ev) for t, ev in events if isinstance(ev, SpeechStopped)]


@pytest.fixture
def jfk(data_dir: Path) -> npt.NDArray[np.float32]:
    """11 s with four pauses inside one sentence, then 1.5 s of silence."""
    audio = load_audio(data_dir / "speech/utterances/jfk/jfk.wav")
    return np.concatenate([audio, np.zeros(24_000, np.float32)])


@pytest.mark.looptime
async def test_vad_policy_ends_after_the_hangover(jfk: npt.NDArray[np.float32]) -> None:
    events = await transcribe(jfk, TurnConfig(detection="vad"), None)
    turns = [ev for _, ev in events if isinstance(ev, TurnUpdate)]
    assert {u.state for u in turns} == {"pause", "resume", "end"}
    for t, stopped in ends(events):
        end = next(u for u in turns if u.state == "end" and u.utterance_id == stopped.utterance_id)
        assert end.reason == "silence"
        assert t - stopped.t >= 500 * MS  # a whole hangover of audio had to arrive
    # every pause that did not end the turn was resumed, in order
    states = [u.state for u in turns]
    assert "pause" in states
    assert states.count("pause") == states.count("resume") + states.count("end")


@pytest.mark.looptime
async def test_smart_complete_ends_at_the_first_pause(jfk: npt.NDArray[np.float32]) -> None:
    model = ScriptedTurn(0.97)  # over the default threshold
    smart = TurnConfig(detection="smart", pause_ns=160 * MS)
    events = await transcribe(jfk, smart, model)
    vad_events = await transcribe(jfk, TurnConfig(detection="vad"), None)
    stops = ends(events)
    assert len(stops) > len(ends(vad_events))  # the model ended turns at short pauses
    first_t, first = stops[0]
    # decided 160 ms into the pause (the scripted model costs no virtual time)
    assert first_t - first.t < 300 * MS
    end = next(ev for _, ev in events if isinstance(ev, TurnUpdate) and ev.state == "end")
    assert (end.reason, end.probability) == ("model", 0.97)
    assert model.seen
    assert max(model.seen) <= 8 * 16_000
    lasts = [ev for _, ev in events if isinstance(ev, TranscriptFinal) and ev.is_last]
    assert len(lasts) == len(stops)


@pytest.mark.looptime
async def test_smart_incomplete_waits_for_max_silence(jfk: npt.NDArray[np.float32]) -> None:
    smart = TurnConfig(detection="smart", max_silence_ns=1000 * MS)
    events = await transcribe(jfk, smart, ScriptedTurn(0.05))
    stops = ends(events)
    vad_stops = ends(await transcribe(jfk, TurnConfig(detection="vad"), None))
    assert 0 < len(stops) < len(vad_stops)  # pauses of 0.5-1 s no longer end a turn
    assert all(t - stopped.t >= 1000 * MS for t, stopped in stops)
    turn_ends = [ev for _, ev in events if isinstance(ev, TurnUpdate) and ev.state == "end"]
    assert {(u.reason, u.probability) for u in turn_ends} == {("silence", 0.05)}


class EndingModel(EnergyModel):
    """The stand-in decoder with ``ending`` on every window's last word: "?" hears each
    window as a question ("w3 w12?"), " and" as stopping mid-phrase ("w3 w12 and")."""

    def __init__(self, ending: str) -> None:
        super().__init__()
        self.ending = ending

    def decode_window(
        self, audio: npt.NDArray[np.float32], prompt: str = "", options: Any = None
    ) -> DecodeResult:
        result = super().decode_window(audio, prompt, options)
        if result.words:
            last = result.words[-1]
            result.words[-1] = DecodedWord(last.text + self.ending, last.start, last.end, 0.9)
        return result


@pytest.mark.looptime
async def test_smart_ends_a_question_the_model_calls_incomplete_after_its_silence(
    jfk: npt.NDArray[np.float32],
) -> None:
    """A flat voice's question: Smart Turn says "incomplete", the pause decode heard "?"."""
    smart = TurnConfig(detection="smart", max_silence_ns=1000 * MS)
    config = AsrConfig(compute="virtual", charge_ns=50 * MS, decode=DecodeOptions(), turn=smart)
    asr = AsrStage(EndingModel("?"), config, turn_model=ScriptedTurn(0.05))  # type: ignore[arg-type]
    events = await run_stage(asr, jfk)
    turn_ends = [ev for _, ev in events if isinstance(ev, TurnUpdate) and ev.state == "end"]
    assert turn_ends
    assert {(u.reason, u.probability) for u in turn_ends} == {("question", 0.05)}
    for t, stopped in ends(events):  # after 300 ms of silence, long before the 1 s backstop
        assert 300 * MS <= t - stopped.t < 1000 * MS


def test_smart_without_a_model_says_so_and_auto_falls_back() -> None:
    with pytest.raises(TurnUnavailable, match="fetch_smart_turn"):
        AsrTurn(TurnConfig(detection="smart"), None)
    assert AsrTurn(TurnConfig(detection="auto"), None).config.policy == "vad"
    assert AsrTurn(TurnConfig(detection="auto"), ScriptedTurn()).config.policy == "smart"


@pytest.mark.looptime
async def test_the_pause_decode_runs_at_the_turn_pause_so_the_final_is_ready_at_the_end(
    jfk: npt.NDArray[np.float32],
) -> None:
    """The ASR's pause decode starts at the turn's pause (96 ms), while Smart Turn decides:
    when the turn ends the words are decoded and the last final goes out at once (at 250 ms
    every end of turn waited for a final decode of its own, 50 ms here)."""
    events = await transcribe(jfk, TurnConfig(detection="smart"), ScriptedTurn(0.97))
    turn_ends = [t for t, ev in events if isinstance(ev, TurnUpdate) and ev.state == "end"]
    lasts = [t for t, ev in events if isinstance(ev, TranscriptFinal) and ev.is_last]
    assert len(turn_ends) == len(lasts) >= 4
    at_once = [last for end, last in zip(turn_ends, lasts, strict=True) if last == end]
    assert len(at_once) >= len(lasts) - 1
    assert backstop_vad(VadConfig(), TurnConfig()).pause_s == pytest.approx(0.096)


@pytest.mark.looptime
async def test_unfinished_words_hold_the_turn_through_the_models_complete(
    jfk: npt.NDArray[np.float32],
) -> None:
    """Every pause's words stop mid-phrase, so the model's "complete" is not asked for and
    the 2 s hold outlasts jfk's pauses (up to ~1.1 s): one turn, ended by the stream's end."""
    model = ScriptedTurn(0.97)
    smart = TurnConfig(detection="smart", pause_ns=160 * MS)
    config = AsrConfig(compute="virtual", charge_ns=50 * MS, decode=DecodeOptions(), turn=smart)
    asr = AsrStage(EndingModel(" and"), config, turn_model=model)  # type: ignore[arg-type]
    events = await run_stage(asr, jfk)
    # the words came first (the pause decode at 96 ms, charged 50 ms; the model's pause is
    # 160 ms): a held pause asks the model nothing
    assert model.seen == []
    (stop,) = ends(events)
    assert not any(isinstance(ev, TurnUpdate) and ev.state == "end" for _, ev in events)
    (last,) = [ev for _, ev in events if isinstance(ev, TranscriptFinal) and ev.is_last]
    assert last.utterance_id == stop[1].utterance_id
    plain = await transcribe(jfk, smart, ScriptedTurn(0.97))  # "w3 w12": no cue
    assert len(ends(plain)) > 1


@pytest.mark.looptime
async def test_a_clients_vad_settings_keep_the_turn_policys_backstop(
    jfk: npt.NDArray[np.float32],
) -> None:
    """A Realtime client's ``server_vad`` (threshold, silence) reaches the ASR as
    ``configure_vad``: the silence becomes the longest a turn waits, decided by the turn
    core, and the segmenter stays the policy's backstop (its pause decode at 96 ms)."""
    smart = TurnConfig(detection="smart", max_silence_ns=1000 * MS)
    config = AsrConfig(compute="virtual", charge_ns=50 * MS, decode=DecodeOptions(), turn=smart)
    asr = AsrStage(EnergyModel(), config, turn_model=ScriptedTurn(0.05))  # type: ignore[arg-type]
    assert asr.configure_vad(0.5, 0.6)
    events = await run_stage(asr, jfk)
    turn = asr.config.turn
    assert turn is not None
    assert (turn.hangover_ns, turn.max_silence_ns) == (600 * MS, 600 * MS)
    assert asr.core is not None
    assert asr.core.config.vad.pause_s == pytest.approx(0.096)
    assert asr.core.config.vad.hangover_s == pytest.approx(2.25)  # past the 2 s hold
    ended = [ev for _, ev in events if isinstance(ev, TurnUpdate) and ev.state == "end"]
    assert ended
    assert {u.reason for u in ended} == {"silence"}  # the turn core's, at the client's 600 ms
    for t, stopped in ends(events):
        assert 600 * MS <= t - stopped.t < 850 * MS
    assert asr.configure_vad(0.6, 3.0)  # again, on the running core (between utterances)
    assert asr.core.config.vad.hangover_s == pytest.approx(3.25)
    assert asr.core.config.vad.threshold == 0.6
    turn = asr.config.turn
    assert turn is not None
    assert (turn.max_silence_ns, turn.unfinished_silence_ns) == (3000 * MS, 2000 * MS)
    assert asr.configure_vad(0.5, None)  # semantic_vad, medium: the policy's own waits again
    turn = asr.config.turn
    assert turn is not None
    assert (turn.max_silence_ns, turn.hangover_ns) == (1000 * MS, smart.hangover_ns)
    assert asr.core.config.vad.threshold == 0.5
    assert asr.core.config.vad.hangover_s == pytest.approx(2.25)  # the backstop: past the hold
