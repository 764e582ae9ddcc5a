"""Hardening against a real server on loopback: auth, origin, sizes, slow clients."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streamkit.clock import NS_PER_MS, LoopClock
from streamkit.events import ErrorEvent, ResponseDone
from streamkit.pipeline import Pipeline
from streamkit.transport import Limits, Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.echo import EchoControls, echo_factory
from streamkit.transport.protocol import FrameHeader, SessionUpdated, encode_audio

pytestmark = pytest.mark.timeout(60)


def test_binding_beyond_loopback_requires_a_token() -> None:
    with pytest.raises(ValueError, match="token"):
        Server({"echo": echo_factory()}, ServerOptions(host="0.0.0.0"))
    Server({"echo": echo_factory()}, ServerOptions(host="0.0.0.0", token="s3cret"))


async def test_token_and_origin_are_checked() -> None:
    options = ServerOptions(port=0, token="s3cret", origins=("https://app.example",))
    server = Server({"echo": echo_factory()}, options)
    async with server.running():
        url = server.url
        with pytest.raises(InvalidStatus) as missing:
            async with connect(url):
                pass
        assert missing.value.response.status_code == 401
        with pytest.raises(InvalidStatus):
            async with connect(url + "?token=wrong"):
                pass
        async with Client.connect(url, token="s3cret") as client:
            assert client.created.session_id
        async with connect(url + "?token=s3cret") as ws:
            assert b"session.created" in (await ws.recv()).encode()
        with pytest.raises(InvalidStatus) as forbidden:
            async with connect(url + "?token=s3cret", origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert forbidden.value.response.status_code == 403
        async with connect(url + "?token=s3cret", origin="https://app.example"):  # type: ignore[arg-type]
            pass
        same_origin = f"http://127.0.0.1:{server.port}"
        async with connect(url + "?token=s3cret", origin=same_origin):  # type: ignore[arg-type]
            pass


async def test_static_client_is_served_on_the_same_port() -> None:
    server = Server({"echo": echo_factory()}, ServerOptions(port=0))
    async with server.running(), httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{server.port}"
        page = await http.get(base + "/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert "app.js" in page.text
        script = await http.get(base + "/app.js")
        assert script.status_code == 200
        assert "getUserMedia" in script.text
        assert (await http.get(base + "/../server.py")).status_code == 404
        assert (await http.get(base + "/nope.txt")).status_code == 404


async def test_oversized_and_bad_frames_get_errors_and_the_session_lives_on() -> None:
    limits = replace(Limits(), max_audio_bytes=4096, max_frame_bytes=64 * 1024)
    server = Server({"echo": echo_factory()}, ServerOptions(port=0, limits=limits))
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="echo")
        await client.send_raw(encode_audio(np.zeros(4000, np.float32), 0, 0))  # 8000 B > 4096
        await client.send_raw(FrameHeader(1, 1, 1, 44100, 1, 0).pack() + b"\0\0")
        await client.send_raw(b"\x00" * 5)
        await client.send_raw("{")
        errors = []
        for _ in range(4):
            got = await client.wait_for(
                lambda r: isinstance(r.event, ErrorEvent) and r.event not in errors, 5
            )
            errors.append(got.event)
        assert [e.code for e in errors] == [
            "message_too_large",
            "unsupported_format",
            "invalid_frame",
            "invalid_json",
        ]
        await client.send_audio(np.zeros(1600, np.float32))
        await client.commit()
        await client.wait_for(lambda r: isinstance(r.event, ResponseDone), 10)
        # past the hard transport limit the connection is closed with 1009
        await client.send_raw(bytes(70 * 1024))
        with pytest.raises(ConnectionError):
            await client.wait_for(lambda r: False, 5)
        assert client.closed_code == 1009


async def _read_until_closed(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def _stuck_client(url: str) -> tuple[socket.socket, object]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock, None


async def test_a_slow_client_is_closed_with_4003_and_never_stalls_another() -> None:
    limits = replace(Limits(), outbox_capacity=16, send_deadline_ms=500)
    factory = echo_factory(tokens=20000, token_ns=0, pad=1000)
    fast_factory = echo_factory(tokens=5, token_ns=10 * NS_PER_MS)
    server = Server({"echo": factory, "fast": fast_factory}, ServerOptions(port=0, limits=limits))
    clock = LoopClock()
    async with server.running():
        sock, _ = await _stuck_client(server.url)
        async with connect(
            server.url, sock=sock, max_queue=1, close_timeout=10, compression=None
        ) as slow:
            await slow.recv()  # session.created; from now on this client reads nothing
            slow.transport.pause_reading()
            await slow.send('{"type": "session.update", "pipeline": "echo"}')
            await slow.send(encode_audio(np.zeros(320, np.float32), 0, 0))
            await slow.send('{"type": "input.commit"}')
            async with Client.connect(server.url) as fast:
                await fast.update(pipeline="fast")
                for _ in range(3):
                    await fast.send_audio(np.zeros(1600, np.float32))
                    started = clock.now()
                    done = len(fast.of_type(ResponseDone))
                    await fast.commit()
                    await fast.wait_for(lambda r, n=done: len(fast.of_type(ResponseDone)) > n, 5)
                    assert clock.now() - started < 1000 * NS_PER_MS
            # the stuck session is closed by the server once one send exceeds the deadline
            for _ in range(100):
                if any(s.close_code == 4003 for s in server.sessions.values()):
                    break
                await clock.sleep(50 * NS_PER_MS)
            assert any(s.close_code == 4003 for s in server.sessions.values())
            slow.transport.resume_reading()  # the client reads again: it gets the close code
            with pytest.raises(ConnectionClosed) as closed:
                await _read_until_closed(slow)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4003
            for _ in range(100):
                if not server.sessions:
                    break
                await clock.sleep(50 * NS_PER_MS)
            assert not server.sessions
            assert {s.close_code for s in server.finished} == {4003, None}


async def test_session_update_validation() -> None:
    server = Server({"echo": echo_factory()}, ServerOptions(port=0))
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="missing")
        bad = await client.wait_for(lambda r: isinstance(r.event, ErrorEvent), 5)
        assert isinstance(bad.event, ErrorEvent)
        assert bad.event.code == "unknown_pipeline"
        await client.update(source="devices")
        await client.wait_for(
            lambda r: isinstance(r.event, ErrorEvent) and r.event.code == "unsupported_source", 5
        )
        await client.update(pipeline="echo", partials=False)
        ok = await client.wait_for(lambda r: isinstance(r.event, SessionUpdated), 5)
        assert isinstance(ok.event, SessionUpdated)
        assert not ok.event.config.partials
        await client.send_audio(np.zeros(320, np.float32))
        await client.update(pipeline="echo")  # same value once running: fine
        await client.update(metrics_interval_ms=-1)
        await client.wait_for(
            lambda r: isinstance(r.event, ErrorEvent) and r.event.code == "invalid_message", 5
        )


class _Exploding:
    name = "exploding"

    async def setup(self, ctx: object) -> None:
        return None

    async def run(self, ctx: Any) -> None:
        async for _ in ctx.input("audio"):
            raise RuntimeError("boom")


def _exploding_factory(source: Any, sink: Any, metrics: Any) -> tuple[Pipeline, Any]:
    pipe = Pipeline(metrics=metrics)
    audio = pipe.edge("audio", 8)
    events = pipe.edge("events", 8)
    pipe.add(source, outputs={"audio": audio})
    pipe.add(_Exploding(), inputs={"audio": audio}, outputs={"out": events})
    pipe.add(sink, inputs={"in": events})
    return pipe, EchoControls()


async def test_a_failing_pipeline_sends_pipeline_error_then_closes_1011() -> None:
    server = Server({"bad": _exploding_factory}, ServerOptions(port=0))
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="bad")
        for _ in range(400):  # more than the source buffers: the server must not hang on them
            await client.send_audio(np.zeros(320, np.float32))
        with pytest.raises(ConnectionError):
            await client.wait_for(lambda r: False, 10)
        errors = client.of_type(ErrorEvent)
        assert errors[0].code == "pipeline_error"
        assert "boom" in errors[0].message
        assert {e.code for e in errors[1:]} <= {"invalid_state"}  # audio after the failure
        assert client.closed_code == 1011
    assert not server.sessions


async def test_rate_limit_answers_each_excess_message_and_recovers() -> None:
    limits = replace(Limits(), messages_per_s=20, message_burst=10)
    server = Server({"echo": echo_factory()}, ServerOptions(port=0, limits=limits))
    async with server.running(), Client.connect(server.url) as client:
        for _ in range(30):
            await client.send_raw('{"type": "session.update"}')
        await client.wait_for(lambda r: len(client.events) >= 31, 5)
        limited = [e for e in client.of_type(ErrorEvent) if e.code == "rate_limited"]
        assert 15 <= len(limited) <= 21  # burst of 10, plus what refilled meanwhile
        assert len(client.of_type(SessionUpdated)) + len(limited) == 30
        await LoopClock().sleep(600 * NS_PER_MS)
        await client.update(partials=True)
        await client.wait_for(
            lambda r: (
                isinstance(r.event, SessionUpdated)
                and len(client.of_type(SessionUpdated)) > 30 - len(limited)
            ),
            5,
        )


async def test_a_full_server_refuses_with_503_and_bad_utf8_closes_1007() -> None:
    server = Server({"echo": echo_factory()}, ServerOptions(port=0, max_sessions=1))
    async with server.running(), Client.connect(server.url) as first:
        with pytest.raises(InvalidStatus) as full:
            async with connect(server.url):
                pass
        assert full.value.response.status_code == 503
        await first.ws.send(b"\xff\xfe", text=True)  # a text frame that is not UTF-8
        with pytest.raises(ConnectionError):
            await first.wait_for(lambda r: False, 5)
        assert first.closed_code == 1007
