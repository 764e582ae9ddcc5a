"""Streaming ASR replayed on the bundled real session: transcripts, lineage, identical traces."""

from __future__ import annotations

from typing import Any

import pytest

from streamkit.core.clock import NS_PER_MS
from streamkit.core.events import TranscriptFinal
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.record.mcap import default_session_path
from streamkit.testing.replay import run_replay

asr = pytest.importorskip("streamkit.asr.stage")
whisper = pytest.importorskip("streamkit.asr.whisper")


@pytest.fixture(scope="module")
def model() -> Any:
    try:
        return whisper.WhisperModelShared()
    except whisper.ModelNotFound as error:
        pytest.skip(str(error))


@pytest.mark.slow
def test_asr_replay_is_deterministic_with_charged_compute(model: Any) -> None:
    # a fixed virtual cost per decode: the trace depends on the session alone
    config = asr.AsrConfig(compute="virtual", charge_ns=300 * NS_PER_MS)

    def factory(source: Stage, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        pipe = Pipeline(metrics=metrics)
        audio, events = pipe.edge("audio", 64), pipe.edge("events", 64)
        pipe.add(source, outputs={"audio": audio})
        pipe.add(asr.AsrStage(model, config), {"in": audio}, {"out": events})
        pipe.add(sink, {"in": events})
        return pipe, None

    first = run_replay(factory, default_session_path())
    second = run_replay(factory, default_session_path())
    text = first.transcript().lower()
    for word in ("blue", "forward", "meters", "now"):
        assert word in text
    finals = first.payloads(TranscriptFinal)
    uids = {f.utterance_id for f in finals}
    assert len(uids) == 3
    for uid in uids:
        marks = first.lineage[uid]
        assert marks["asr.vad_start"] < marks["asr.first_partial"] <= marks["asr.final"]
    assert first.to_json() == second.to_json()
