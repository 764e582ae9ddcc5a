"""The stock ``openai`` SDK (GA ``client.realtime``) against a real ``streamkit serve``.

The server is the real CLI in a subprocess with the real models (Whisper + SmolLM2); the
speech is real recordings from tests/data, sent as 24 kHz PCM16 base64 appends. Every server
event is read raw (``recv_bytes``) and validated strictly against the SDK's own pydantic model
for its type (:mod:`tests.transport.realtime_check`): the SDK's own reader would accept
anything. Covered: a server-VAD turn, a typed text turn, a cancel mid-answer, a manual
commit turn and malformed events (one ``error`` each, the connection stays usable).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.transport.realtime_check import validate

openai = pytest.importorskip("openai")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

RATE = 24_000
CHUNK = RATE // 10  # 100 ms appends
SPEECH = "speech/utterances/ljspeech/LJ001-0002.wav"  # "in being comparatively modern."
SPEECH_WORDS = ["in", "being", "comparatively", "modern"]


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamkit serve`` with the real models; yields the base URL it printed."""
    port_file = tmp_path_factory.mktemp("serve") / "port"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamkit", "serve", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for _ in range(1800):
            if port_file.exists() and port_file.read_text():
                break
            try:
                proc.wait(0.1)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"serve exited: {proc.communicate()[1][-2000:]}")
        else:
            pytest.fail("serve did not start in 180 s")
        yield f"ws://127.0.0.1:{int(port_file.read_text())}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def speech_pcm(data_dir: Path) -> bytes:
    from streamkit.sources.media_io import load_audio

    audio = load_audio(data_dir / SPEECH, sample_rate=RATE)
    return (np.clip(audio, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


class Session:
    """One SDK connection; every received event validated strictly and kept."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.events: list[dict[str, Any]] = []

    async def next(self, wait_s: float = 30.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv_bytes(), wait_s)
        event = json.loads(raw)
        validate(event)
        self.events.append(event)
        return event

    async def until(self, kind: str, wait_s: float = 60.0) -> list[dict[str, Any]]:
        """Events up to and including the first of ``kind``."""
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            event = await self.next(max(0.1, deadline - loop.time()))
            out.append(event)
            if event["type"] == kind:
                return out

    async def append(self, pcm: bytes, chunk: int = CHUNK, pace: float | None = 0.1) -> None:
        for start in range(0, len(pcm), chunk * 2):
            piece = base64.b64encode(pcm[start : start + chunk * 2]).decode()
            await self.conn.input_audio_buffer.append(audio=piece)
            if pace:
                await asyncio.sleep(pace)  # real-time pace, as a microphone


@pytest.fixture
async def session(serve: str) -> AsyncIterator[Session]:
    client = openai.AsyncOpenAI(api_key="sk-local", websocket_base_url=serve)
    async with client.realtime.connect(model="streamkit") as conn:
        s = Session(conn)
        created = await s.next()
        assert created["type"] == "session.created"
        assert created["session"]["model"] == "streamkit"
        yield s


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def _check_response(events: list[dict[str, Any]], status: str = "completed") -> str:
    """The §6.2 order for one response; returns its text."""
    added = next(e for e in events if e["type"] == "response.output_item.added")
    mine = [
        e
        for e in events
        if e["type"].startswith("response.")
        or (
            e["type"] in ("conversation.item.added", "conversation.item.done")
            and e["item"]["id"] == added["item"]["id"]
        )
    ]
    body = _types(mine)
    opening = [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    closing = [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    assert body[:4] == opening
    assert body[-5:] == closing
    assert set(body[4:-5]) <= {"response.output_text.delta"}
    done = events[-1]["response"]
    assert done["status"] == status
    rid = done["id"]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert all(e["response_id"] == rid for e in events if "response_id" in e)
    text_done = next(e for e in events if e["type"] == "response.output_text.done")
    assert text_done["text"] == "".join(deltas)
    if len(text_done["text"].split()) > 3:
        assert len(deltas) >= 2  # streamed, not one lump
    return str(text_done["text"])


async def test_server_vad_turn_transcript_and_streamed_answer(
    session: Session, speech_pcm: bytes
) -> None:
    await session.conn.session.update(
        session={
            "type": "realtime",
            "output_modalities": ["text"],
            "instructions": "You are a concise assistant.",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": RATE},
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                }
            },
        }
    )
    updated = await session.next()
    assert updated["type"] == "session.updated"
    assert updated["session"]["audio"]["input"]["transcription"]["model"] == "whisper-1"
    silence = bytes(2 * RATE // 2)
    await session.append(silence + speech_pcm + bytes(2 * RATE * 2))
    events = await session.until("response.done", 150)
    kinds = _types(events)
    order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
    ]
    assert [k for k in kinds if k in order][:4] == order
    assert kinds.count("input_audio_buffer.speech_started") == 1
    started, stopped = (events[kinds.index(k)] for k in order[:2])
    item = started["item_id"]
    assert stopped["item_id"] == item
    assert 0 <= started["audio_start_ms"] <= 500 < stopped["audio_end_ms"] <= 500 + 2000
    if "conversation.item.input_audio_transcription.completed" not in kinds:
        events += await session.until("conversation.item.input_audio_transcription.completed")
    deltas = [e["delta"] for e in events if e["type"].endswith("transcription.delta")]
    completed = next(e for e in events if e["type"].endswith("transcription.completed"))
    assert completed["item_id"] == item
    assert _words("".join(deltas)) == _words(completed["transcript"])
    assert _words(completed["transcript"]) == SPEECH_WORDS
    assert completed["usage"]["type"] == "duration"
    answer = _check_response(events)
    assert answer.strip()
    assert kinds.index("response.created") > kinds.index("input_audio_buffer.committed")


async def test_typed_text_turn(session: Session) -> None:
    item = {
        "id": "item_client_1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "What is the capital of France?"}],
    }
    await session.conn.conversation.item.create(item=item)
    added = await session.until("conversation.item.done")
    assert _types(added) == ["conversation.item.added", "conversation.item.done"]
    assert added[0]["item"]["id"] == "item_client_1"
    await session.conn.response.create()
    events = await session.until("response.done")
    assert _check_response(events).strip()


async def test_cancel_in_the_middle_of_an_answer(session: Session) -> None:
    item = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Tell me a very long story about a dragon."}],
    }
    await session.conn.conversation.item.create(item=item)
    await session.until("conversation.item.done")
    await session.conn.response.create(response={"max_output_tokens": 200})
    await session.until("response.output_text.delta")
    await session.conn.response.cancel()
    loop = asyncio.get_running_loop()
    asked = loop.time()
    rest = await session.until("response.done", 10)
    assert loop.time() - asked < 2.0
    done = rest[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "client_cancelled"
    # nothing of that response after its response.done; the connection still answers
    await session.conn.send({"type": "no_such.event", "event_id": "probe"})
    after = await session.until("error", 10)
    assert not [e for e in after if e["type"] == "response.output_text.delta"]
    assert after[-1]["error"]["event_id"] == "probe"


async def test_manual_commit_turn(session: Session, speech_pcm: bytes) -> None:
    await session.conn.session.update(
        session={
            "type": "realtime",
            "audio": {"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}},
        }
    )
    updated = await session.next()
    assert updated["session"]["audio"]["input"]["turn_detection"] is None
    await session.append(speech_pcm + bytes(2 * RATE // 2), chunk=RATE, pace=None)  # 1 s, fast
    await session.conn.input_audio_buffer.commit()
    await session.conn.response.create()
    events = await session.until("response.done", 150)
    kinds = _types(events)
    assert "input_audio_buffer.speech_started" not in kinds
    assert kinds[:2] == ["input_audio_buffer.committed", "conversation.item.added"]
    item = events[0]["item_id"]
    if "conversation.item.input_audio_transcription.completed" not in kinds:
        events += await session.until("conversation.item.input_audio_transcription.completed")
    completed = next(e for e in events if e["type"].endswith("transcription.completed"))
    assert completed["item_id"] == item
    assert _words(completed["transcript"]) == SPEECH_WORDS
    _check_response(events)
    assert kinds.index("response.created") > kinds.index("input_audio_buffer.committed")


async def test_spoken_answer_streams_24k_audio_and_its_transcript(session: Session) -> None:
    """``output_modalities: ["audio"]``: the pipeline's voice (Piper) comes back as base64
    24 kHz PCM16 deltas with the words heard as transcript deltas."""
    await session.conn.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
    updated = await session.next()
    if updated["type"] == "error":
        pytest.skip(f"this server has no voice: {updated['error']['message']}")
    assert updated["session"]["output_modalities"] == ["audio"]
    item = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Say hello to me."}],
    }
    await session.conn.conversation.item.create(item=item)
    await session.until("conversation.item.done")
    await session.conn.response.create()
    events = await session.until("response.done", 120)
    kinds = _types(events)
    assert "response.output_text.delta" not in kinds
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    samples = np.frombuffer(audio, "<i2").astype(np.float32) / 32768
    assert len(samples) / RATE > 0.3  # at least a word of speech at 24 kHz
    assert float(np.sqrt(np.mean(samples**2))) > 0.01
    words = [e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"]
    done = next(e for e in events if e["type"] == "response.output_audio_transcript.done")
    assert "".join(words) == done["transcript"]
    assert _words(done["transcript"])
    response = events[-1]["response"]
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["type"] == "output_audio"
    order = [k for k in kinds if k.startswith("response.") and "delta" not in k]
    assert order == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]


MALFORMED: list[tuple[Any, str]] = [
    ({"type": "no_such.event", "event_id": "m1"}, "invalid_event"),
    ({"type": "input_audio_buffer.append", "audio": "%%%", "event_id": "m2"}, "invalid_value"),
    ({"type": "input_audio_buffer.append", "audio": "AAEC", "event_id": "m3"}, "invalid_value"),
    ({"type": "input_audio_buffer.commit", "event_id": "m4"}, "input_audio_buffer_commit_empty"),
    ({"type": "response.cancel", "event_id": "m5"}, "response_cancel_not_active"),
    (
        {"type": "conversation.item.create", "item": {"type": "message"}, "event_id": "m6"},
        "invalid_value",
    ),
    (
        {"type": "conversation.item.delete", "item_id": "x", "event_id": "m7"},
        "unsupported_event",
    ),
    (
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}},
            "event_id": "m8",
        },
        "unsupported_value",
    ),
]


async def test_malformed_events_one_error_each_connection_usable(session: Session) -> None:
    for event, _ in MALFORMED:
        await session.conn.send(event)
    await session.conn.send("this is not json")  # the SDK sends strings as they are
    errors = [await session.next(10) for _ in range(len(MALFORMED) + 1)]
    assert _types(errors) == ["error"] * (len(MALFORMED) + 1)
    for (event, code), error in zip(MALFORMED, errors, strict=False):
        assert error["error"]["code"] == code
        assert error["error"]["event_id"] == event["event_id"]
    assert errors[-1]["error"]["code"] == "invalid_json"
    await session.conn.session.update(session={"type": "realtime", "instructions": "Still here."})
    updated = await session.next(10)
    assert updated["type"] == "session.updated"
    assert updated["session"]["instructions"] == "Still here."


AGENTS_JS = Path(__file__).resolve().parents[2] / ".node-realtime"


def test_agents_sdk_for_javascript_session(serve: str, speech_pcm: bytes, tmp_path: Path) -> None:
    """@openai/agents-realtime (Node, WebSocket transport, unchanged): a typed turn and a
    spoken server-VAD turn; its history holds both answers and the transcript, no errors."""
    if not (AGENTS_JS / "node_modules" / "@openai" / "agents-realtime").is_dir():
        pytest.skip("@openai/agents-realtime is not installed (make test installs it)")
    pcm = tmp_path / "speech24k.pcm"
    pcm.write_bytes(speech_pcm)
    script = Path(__file__).with_name("realtime_agents.mjs")
    done = subprocess.run(
        ["node", str(script), f"{serve}/realtime", str(pcm)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "AGENTS_JS": str(AGENTS_JS)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    events = result["events"]
    assert events[0] == "session.created"
    assert events.count("response.done") == 2
    assert "conversation.item.retrieved" in events  # the SDK re-reads transcribed items
    history = result["history"]
    roles = [item["role"] for item in history]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert history[0]["content"][0]["text"] == "What is the capital of France?"
    assert all(item["content"][0]["text"] for item in history[1::2])  # both answers
    assert _words(history[2]["content"][0]["text"]) == SPEECH_WORDS
    assert all(item["status"] == "completed" for item in history)
