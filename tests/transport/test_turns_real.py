"""Turns through a real server on loopback with the real ASR (captions pipeline).

Issue 12, bug 1: "one two three" (english.wav) came back as "1. 1. 2. 3." through the server
while ``transcribe --stream`` was right. The samples differ — the server hears PCM16 — and
that tipped Whisper into a zero-length repeat in the silence after the word, which the
ASR core committed. The client here sends what the browser page sends (int16 scaled by
32767/32768), at real-time pace.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamkit.core.clock import NS_PER_MS
from streamkit.core.events import SpeechStarted, TranscriptFinal
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.lm.load import LMSpec
from streamkit.transport import Server, ServerOptions, SessionConfig
from streamkit.transport.client import Client
from streamkit.turn.core import TurnConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def captions_factory() -> Any:
    from streamkit.pipelines import assistant

    # silence-only turns: this test is about each word arriving once, and with Smart Turn
    # "one two three" (a list said with pauses) may rightly stay one turn
    base = assistant.AssistantConfig(lm=LMSpec(engine="none"))
    config = replace(base, asr=replace(base.asr, turn=TurnConfig(detection="vad")))
    models = assistant.Models.load(config)

    def factory(source: Stage, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        return assistant.build(config, models, source, sink, metrics=metrics)

    return factory


@pytest.fixture
async def server(captions_factory: Any) -> AsyncIterator[Server]:
    options = ServerOptions(port=0, config=SessionConfig(pipeline="captions"))
    srv = Server({"captions": captions_factory}, options)
    async with srv.running():
        yield srv


def heard(client: Client) -> list[str]:
    """The words of every final so far, without punctuation ("1." and "1," are "1")."""
    finals = client.of_type(TranscriptFinal)
    return [key for f in finals for w in f.words if (key := re.sub(r"[^\w']", "", w.text))]


def browser_pcm16(audio: np.ndarray) -> np.ndarray:
    """What ``static/pcm-worklet.js`` sends: ``v < 0 ? v * 32768 : v * 32767`` into int16."""
    return np.trunc(np.where(audio < 0, audio * 32768, audio * 32767)).astype(np.int16)


async def test_one_two_three_through_the_server_gives_each_word_once(
    server: Server, data_dir: Path
) -> None:
    from streamkit.sources.media_io import load_audio

    audio = browser_pcm16(load_audio(data_dir / "speech/utterances/sr_english/english.wav"))
    async with Client.connect(server.url) as client:
        await client.update(pipeline="captions")
        for begin in range(0, len(audio), 320):  # 20 ms frames at real-time pace
            chunk = audio[begin : begin + 320]
            await client.send_audio(chunk)
            await client.clock.sleep(20 * NS_PER_MS)
        await client.stream_audio(np.zeros(16000, np.float32))
        await client.commit()
        with contextlib.suppress(TimeoutError):  # however the turns are cut: all 3 words
            await client.wait_until(
                lambda: client.turns.settled(answers=False) and len(heard(client)) >= 3, 30
            )
    finals = [f for f in client.of_type(TranscriptFinal) if f.text]
    assert heard(client) == ["1", "2", "3"]  # each word once ("1. 1. 2. 3." before the fix)
    started = {e.utterance_id: e.t for e in client.of_type(SpeechStarted)}
    for final in finals:  # no word before its own utterance began (less the 0.3 s pre-roll)
        assert all(w.start >= started[final.utterance_id] - 300 * NS_PER_MS for w in final.words)
