"""session.update ``turn_detection`` and ``turn`` through a real server on loopback: applied to
the running pipeline's controls; a policy the server cannot run, or a threshold out of range,
is an error event, and the session lives on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streamkit.asr.config import AsrConfig
from streamkit.asr.stage import AsrStage
from streamkit.core.clock import NS_PER_MS as MS
from streamkit.core.events import ErrorEvent
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.pipelines.assistant import Controls
from streamkit.transport import Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.echo import echo_factory
from streamkit.transport.protocol import SessionUpdated, TurnSettings
from streamkit.turn.backend import TurnUnavailable
from streamkit.turn.core import TurnConfig
from tests.asr.test_asr_stage import EnergyModel
from tests.turn.test_asr_turn import ScriptedTurn

pytestmark = pytest.mark.timeout(60)


def turn_factory(calls: list[str]) -> Any:
    """The echo pipeline with controls that take ``set_turn_detection`` (no Smart Turn)."""
    inner = echo_factory()

    def build(source: Stage, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        pipe, controls = inner(source, sink, metrics)

        def set_turn_detection(detection: str) -> None:
            if detection == "smart":
                raise TurnUnavailable("turn_detection=smart needs the Smart Turn model")
            calls.append(detection)

        controls.set_turn_detection = set_turn_detection
        return pipe, controls

    return build


async def test_turn_detection_is_applied_and_refused_when_impossible() -> None:
    calls: list[str] = []
    server = Server({"echo": turn_factory(calls)}, ServerOptions(port=0))
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="echo", turn_detection="vad")  # applied at build time
        await client.send_audio(np.zeros(320, np.float32))
        await client.wait_until(lambda: calls == ["vad"], 5)
        since = client.event_count
        await client.update(turn_detection="auto")
        ok = await client.wait_for(lambda r: isinstance(r.event, SessionUpdated), 5, since=since)
        assert isinstance(ok.event, SessionUpdated)
        assert ok.event.config.turn_detection == "auto"
        assert calls == ["vad", "auto"]
        since = client.event_count
        await client.update(turn_detection="smart")
        bad = await client.wait_for(lambda r: isinstance(r.event, ErrorEvent), 5, since=since)
        assert isinstance(bad.event, ErrorEvent)
        assert bad.event.code == "invalid_message"
        assert "Smart Turn" in bad.event.message
        since = client.event_count
        await client.update(partials=True)  # the session lives on, the policy unchanged
        ok = await client.wait_for(lambda r: isinstance(r.event, SessionUpdated), 5, since=since)
        assert isinstance(ok.event, SessionUpdated)
        assert ok.event.config.turn_detection == "auto"


async def test_turn_thresholds_are_merged_applied_and_range_checked() -> None:
    """``session.update`` ``turn``: each update's given fields over the ones before, handed to
    the pipeline (at build time, then at once); an out-of-range value is an error event and
    the session lives on with the thresholds it had."""
    calls: list[TurnSettings] = []
    inner = turn_factory([])

    def build(source: Stage, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        pipe, controls = inner(source, sink, metrics)
        controls.set_turn_settings = calls.append
        return pipe, controls

    server = Server({"echo": build}, ServerOptions(port=0))
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="echo", turn=TurnSettings(threshold=0.8))
        await client.wait_until(lambda: calls == [TurnSettings(threshold=0.8)], 5)
        since = client.event_count
        await client.update(turn=TurnSettings(max_silence_ms=1500))
        ok = await client.wait_for(lambda r: isinstance(r.event, SessionUpdated), 5, since=since)
        assert isinstance(ok.event, SessionUpdated)
        both = TurnSettings(threshold=0.8, max_silence_ms=1500)
        assert ok.event.config.turn == both
        assert calls[-1] == both
        since = client.event_count
        await client.update(turn=TurnSettings(threshold=1.5))
        bad = await client.wait_for(lambda r: isinstance(r.event, ErrorEvent), 5, since=since)
        assert isinstance(bad.event, ErrorEvent)
        assert bad.event.code == "invalid_message"
        assert "threshold" in bad.event.message
        since = client.event_count
        await client.update(partials=True)
        ok = await client.wait_for(lambda r: isinstance(r.event, SessionUpdated), 5, since=since)
        assert isinstance(ok.event, SessionUpdated)
        assert ok.event.config.turn == both
        assert calls[-1] == both


def test_the_assistant_takes_turn_thresholds_in_ms_and_keeps_the_rest() -> None:
    smart = TurnConfig(detection="smart", unfinished_silence_ns=1_000_000_000)
    asr = AsrStage(EnergyModel(), AsrConfig(turn=smart), turn_model=ScriptedTurn())  # type: ignore[arg-type]
    controls = Controls(asr, None)
    controls.set_turn_settings(
        TurnSettings(threshold=0.7, pause_ms=120, question_silence_ms=0, statement_silence_ms=0)
    )
    turn = asr.config.turn
    assert turn is not None
    assert (turn.threshold, turn.pause_ns, turn.question_silence_ns) == (0.7, 120 * MS, 0)
    assert turn.statement_silence_ns == 0
    assert (turn.detection, turn.unfinished_silence_ns) == ("smart", 1000 * MS)
    assert turn.max_silence_ns == TurnConfig().max_silence_ns
