"""``/v1/realtime`` on a real loopback server (the echo pipeline: no models): auth, the
subprotocol, size limits sized for base64 appends, images and the live-camera extension."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from streamkit.transport import Server, ServerOptions
from streamkit.transport.codecs.v1 import encode_video
from streamkit.transport.echo import echo_factory

TOKEN = "sekrit"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server({"echo": echo_factory()}, ServerOptions(port=0, token=TOKEN))
    async with srv.running():
        yield srv


async def _next(ws: ClientConnection, kind: str | None = None) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            event: dict[str, Any] = json.loads(await ws.recv())
            if kind is None or event["type"] == kind:
                return event


def _url(server: Server) -> str:
    return f"{server.realtime_url}/realtime?model=gpt-realtime"


async def test_bearer_token_is_the_api_key(server: Server) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_url(server), additional_headers={"Authorization": "Bearer nope"}):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        async with connect(_url(server)):
            pass
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(_url(server), additional_headers=headers) as ws:
        created = await _next(ws)
        assert created["type"] == "session.created"
        assert created["session"]["model"] == "gpt-realtime"
        assert ws.subprotocol is None


async def test_browser_subprotocols_carry_the_key_and_select_realtime(server: Server) -> None:
    offered = ["realtime", f"openai-insecure-api-key.{TOKEN}", "openai-beta.realtime-v1"]
    async with connect(_url(server), subprotocols=offered) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "realtime"
        assert (await _next(ws))["type"] == "session.created"
    wrong = ["realtime", "openai-insecure-api-key.nope"]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_url(server), subprotocols=wrong):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 401


async def test_session_created_comes_first_and_large_appends_are_accepted(server: Server) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(_url(server), additional_headers=headers) as ws:
        update = {"type": "session.update", "session": {"type": "realtime", "instructions": "x"}}
        await ws.send(json.dumps(update))  # before reading anything, as the SDK examples do
        assert (await _next(ws))["type"] == "session.created"
        assert (await _next(ws))["type"] == "session.updated"
        one_second = base64.b64encode(bytes(2 * 24_000)).decode()  # ~64 KB of JSON
        big = base64.b64encode(bytes(760_000)).decode()  # ~1 MiB of JSON
        for audio in (one_second, big):
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "c"}))
        committed = await _next(ws)
        assert committed["type"] == "input_audio_buffer.committed"  # no error came before it
        (session,) = server.sessions.values()
        assert session.source is not None
        assert session.source.samples_in >= (48_000 + 760_000) // 2 * 2 // 3 - 400


async def test_images_and_camera_frames_reach_the_pipeline(server: Server, data_dir: Path) -> None:
    jpeg = (data_dir / "images/face_recognition_obama.jpg").read_bytes()
    uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(_url(server), additional_headers=headers) as ws:
        await _next(ws, "session.created")
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_image", "image_url": uri}],
        }
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        added = await _next(ws)
        assert added["type"] == "conversation.item.added"
        assert added["item"]["content"][0]["type"] == "input_image"
        # the live-camera extension: /ws video.frame binary frames on the same socket
        for seq in range(3):
            await ws.send(encode_video(jpeg, seq, seq * 100_000_000))
        await ws.send(b"\x00garbage")
        error = await _next(ws, "error")
        assert error["error"]["code"] == "invalid_event"
        (session,) = server.sessions.values()
        assert session.metrics.counters["ws.video.frames"].value == 4


async def test_pcm_from_a_client_reaches_the_asr_rate(server: Server) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(_url(server), additional_headers=headers) as ws:
        await _next(ws, "session.created")
        tone = (np.sin(np.arange(24_000) * 2 * np.pi * 440 / 24_000) * 8000).astype("<i2")
        audio = base64.b64encode(tone.tobytes()).decode()
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        await _next(ws, "input_audio_buffer.committed")
        (session,) = server.sessions.values()
        assert session.source is not None
        # 1 s at 16 kHz, less what the resampler holds until more audio comes (~20 ms)
        assert 15_600 <= session.source.samples_in <= 16_000
