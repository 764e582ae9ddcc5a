"""The full assistant replayed on the bundled real session, on virtual time.

One fixture (``assistant_factory``) builds the factory the replay harness needs; the lead can
add assertions here as the assistant grows (vision observations, answer content).
"""

from __future__ import annotations

import pytest

from streamkit.core.events import ResponseDone, SpeechStarted, TranscriptFinal
from streamkit.record.mcap import default_session_path
from streamkit.testing.replay import PipelineFactory, Trace, run_replay

pytest.importorskip("pipelines.assistant")


@pytest.fixture(scope="module")
def assistant_factory() -> PipelineFactory:
    from streamkit.ui.pipelines import load_pipeline

    return load_pipeline("assistant", virtual=True).factory


@pytest.fixture(scope="module")
def trace(assistant_factory: PipelineFactory) -> Trace:
    return run_replay(assistant_factory, default_session_path())


@pytest.mark.slow
def test_assistant_transcribes_and_answers_each_turn(trace: Trace) -> None:
    text = trace.transcript().lower()
    for word in ("blue", "forward", "meters", "now"):
        assert word in text
    turns = {s.utterance_id for s in trace.payloads(SpeechStarted)}
    assert len(turns) == 3
    finals = {f.utterance_id for f in trace.payloads(TranscriptFinal) if f.text.strip()}
    assert finals == turns
    done = trace.payloads(ResponseDone)
    assert {d.utterance_id for d in done} <= turns
    assert any(d.text.strip() and not d.cancelled for d in done)


@pytest.mark.slow
def test_assistant_lineage_is_complete(trace: Trace) -> None:
    answered = {d.utterance_id for d in trace.payloads(ResponseDone) if not d.cancelled}
    for uid in {s.utterance_id for s in trace.payloads(SpeechStarted)}:
        marks = trace.lineage[uid]
        assert marks["asr.vad_start"] <= marks["asr.final"]
        if uid in answered:
            assert marks["asr.final"] <= marks["responder.out"]
