"""A real server on loopback, the echo pipeline, the Python client: the session basics."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from streamkit.core.clock import NS_PER_MS, LoopClock
from streamkit.core.events import ResponseDelta, ResponseDone, TranscriptFinal, TranscriptPartial
from streamkit.transport.client import Client
from streamkit.transport.protocol import PROTOCOL, MetricsEvent, SessionUpdated

EchoServer = Any

pytestmark = pytest.mark.timeout(30)


async def test_session_created_update_audio_commit_answer(echo_server: EchoServer) -> None:
    async with Client.connect(echo_server.url) as client:
        assert client.created.protocol == PROTOCOL
        assert client.created.pipelines == ["echo"]
        await client.update(pipeline="echo", metrics_interval_ms=200)
        await client.wait_for(lambda r: isinstance(r.event, SessionUpdated), 5)
        tone = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
        await client.stream_audio(tone, realtime=False)
        await client.commit()
        done = await client.wait_for(lambda r: isinstance(r.event, ResponseDone), 10)
        assert isinstance(done.event, ResponseDone)
        assert not done.event.cancelled
        finals = client.of_type(TranscriptFinal)
        assert finals
        assert finals[0].text == "heard 1.00 s"
        word = finals[0].words[0]
        assert word.end - word.start == pytest.approx(1e9, abs=2e6)
        assert len(client.of_type(ResponseDelta)) == 20
        assert client.of_type(TranscriptPartial)
        metrics = await client.wait_for(
            lambda r: (
                isinstance(r.event, MetricsEvent)
                and r.event.transport.get("ws.audio.samples") == 16000
            ),
            5,
        )
        assert isinstance(metrics.event, MetricsEvent)
        assert "u0" in metrics.event.lineage
        assert "sent.transcript.final" in metrics.event.lineage["u0"]
    assert echo_server.stages[0].samples == 16000


async def test_disconnect_mid_answer_cancels_and_leaks_no_task(echo_server: EchoServer) -> None:
    before = {t for t in asyncio.all_tasks()}
    echo_server.stages.clear()
    async with Client.connect(echo_server.url) as client:
        await client.update(pipeline="echo")
        await client.send_audio(np.zeros(3200, np.float32))
        await client.commit()
        await client.wait_for(lambda r: isinstance(r.event, ResponseDelta), 5)
    # the client left mid-answer (20 tokens x 20 ms): the session and all its tasks end
    for _ in range(100):
        if not echo_server.server.sessions:
            break
        await LoopClock().sleep(20 * NS_PER_MS)
    assert not echo_server.server.sessions
    await LoopClock().sleep(50 * NS_PER_MS)
    left = {t for t in asyncio.all_tasks() if t not in before and not t.done()}
    left.discard(asyncio.current_task())
    assert not [
        t.get_name()
        for t in left
        if "send:" in t.get_name()
        or "pipeline" in t.get_name()
        or "stage:" in t.get_name()
        or "metrics:" in t.get_name()
    ]
    stage = echo_server.stages[0]
    assert stage._answer is not None
    assert stage._answer.cancelled()
