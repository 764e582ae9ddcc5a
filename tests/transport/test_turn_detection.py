"""session.update ``turn_detection`` through a real server on loopback: applied to the running
pipeline's controls; a policy the server cannot run is an error event, the session lives on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from streamkit.core.events import ErrorEvent
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.transport import Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.echo import echo_factory
from streamkit.transport.protocol import SessionUpdated
from streamkit.turn.backend import TurnUnavailable

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
