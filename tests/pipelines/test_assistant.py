"""The full assistant on a real talking-head clip (GRID: real audio + real video), virtual time.

Real Whisper tiny.en, real SmolLM2 (llama.cpp), real OpenCV vision; compute runs inline and is
charged to the virtual clock (``compute="virtual"``), so the test sees honest latencies without
real-time waiting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streamkit.core.events import (
    Observation,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    TranscriptFinal,
)
from streamkit.core.operators import Collector
from streamkit.pipelines.assistant import AssistantConfig, Models, build
from streamkit.sources.files import FileSource

pytestmark = [pytest.mark.slow]

CONFIG = AssistantConfig(compute="virtual")


@pytest.fixture(scope="module")
def models() -> Models:
    return Models.load(CONFIG)


@pytest.mark.looptime
async def test_assistant_hears_sees_and_answers(models: Models, data_dir: Path) -> None:
    sink = Collector()
    source = FileSource(data_dir / "av/grid/lbax4n.mpg", pace=True)
    pipe, _controls = build(CONFIG, models, source, sink)
    await pipe.run()

    payloads = sink.payloads()
    observations = [p for p in payloads if isinstance(p, Observation)]
    finals = [p for p in payloads if isinstance(p, TranscriptFinal)]
    done = [p for p in payloads if isinstance(p, ResponseDone)]
    assert observations, "the vision encoder saw no keyframe"
    assert any(p.width == 360 and p.height == 288 for p in observations)
    assert any(isinstance(p, SpeechStarted) for p in payloads)
    heard = " ".join(f.text for f in finals).lower()
    assert "blue" in heard, heard
    assert "four" in heard or "4" in heard, heard
    assert len(done) == 1
    assert not done[0].cancelled
    assert done[0].text.strip()
    deltas = [p for p in payloads if isinstance(p, ResponseDelta)]
    assert "".join(d.text for d in deltas) == done[0].text

    # Every word sits on the shared clock inside the clip's span.
    base = pipe.state.base_time
    assert base is not None
    for final in finals:
        for word in final.words:
            assert base <= word.start <= word.end <= base + 3_100_000_000

    # Lineage of the answered utterance: capture → VAD → final → first token, in that order.
    uid = done[0].utterance_id
    lineage = pipe.metrics.lineage.get(uid)
    order = ["asr.vad_start", "asr.final", "lm.first_token"]
    assert all(event in lineage for event in order), lineage
    times = [lineage[event] for event in order]
    assert times == sorted(times)
    assert pipe.metrics.snapshot()["edges"]["source.audio"]["dropped"] == 0
