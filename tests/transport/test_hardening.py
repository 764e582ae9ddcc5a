"""Hardening against a real server on loopback: auth, origin, sizes, slow clients."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import json
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streamkit.commands import heap
from streamkit.core.clock import NS_PER_MS, LoopClock
from streamkit.core.events import ErrorEvent, ResponseDelta, ResponseDone, TranscriptFinal
from streamkit.core.pipeline import Pipeline
from streamkit.transport import Limits, Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.codecs.v1 import encode_audio
from streamkit.transport.echo import EchoControls, echo_factory
from streamkit.transport.protocol import FrameHeader, SessionUpdated
from streamkit.transport.server import is_loopback

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


# -- issue 18: findings of the abuse run, each against a real server on loopback -----------


async def _handshake(port: int, path: str, headers: dict[str, str], host: str = "127.0.0.1") -> int:
    """Send a raw WebSocket upgrade request with exactly these headers; the HTTP status."""
    reader, writer = await asyncio.open_connection(host, port)
    lines = [
        f"GET {path} HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return int(status.split()[1])


DEEP = [
    "[" * 984 + "]" * 984,
    '{"a":' * 984 + "1" + "}" * 984,
    '{"type": "session.update", "pipeline": ' + "[" * 2000 + "]" * 2000 + "}",
    '{"type": "session.update", "metrics_interval_ms": 1' + "0" * 5000 + "}",
    '{"type": "session.update", "metrics_interval_ms": 1' + "0" * 30 + "}",
    '{"type": "session.update", "metrics_interval_ms": 1e999}',
    '{"type": "session.update", "pipeline": "' + "x" * 15000 + '"}',
]


async def test_deeply_nested_or_huge_json_gets_an_error_and_the_session_lives_on() -> None:
    """Finding 1: 984 nested arrays closed the session with 1011 and no ``error`` event."""
    server = Server({"echo": echo_factory()}, ServerOptions(port=0))
    async with server.running(), Client.connect(server.url) as client:
        for text in DEEP:
            await client.send_raw(text)
        await client.update(pipeline="echo")
        await client.wait_for(lambda r: isinstance(r.event, SessionUpdated), 10)
        codes = [e.code for e in client.of_type(ErrorEvent)]
        assert codes == [
            *["invalid_json"] * 4,
            "invalid_message",
            "invalid_json",
            "unknown_pipeline",
        ]
        assert client.closed_code is None
        assert len(client.of_type(SessionUpdated)) == 1


async def test_dns_rebinding_is_refused_by_the_host_check() -> None:
    """Finding 2: ``Host: evil.example`` + matching ``Origin`` got 101 on a loopback server."""
    server = Server({"echo": echo_factory()}, ServerOptions(port=0))
    async with server.running(), httpx.AsyncClient() as http:
        port = server.port
        evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        assert await _handshake(port, "/ws", evil) == 403
        assert await _handshake(port, "/ws", {"Host": f"evil.example:{port}"}) == 403
        # the page and the metrics are not readable through a rebound name either
        page = await http.get(f"http://127.0.0.1:{port}/", headers={"Host": evil["Host"]})
        assert page.status_code == 403
        metrics = await http.get(f"http://127.0.0.1:{port}/metrics", headers={"Host": "x.test"})
        assert metrics.status_code == 403
        # the names the server is known by, with their own origin
        for name in ("127.0.0.1", "localhost", "127.0.0.2", "LOCALHOST"):
            own = {"Host": f"{name}:{port}", "Origin": f"http://{name}:{port}"}
            assert await _handshake(port, "/ws", own) == 101, name
        assert await _handshake(port, "/ws", {"Host": f"[::1]:{port}"}) == 101
        # an allowed Host does not make any Origin allowed
        cross = {"Host": f"127.0.0.1:{port}", "Origin": f"http://evil.example:{port}"}
        assert await _handshake(port, "/ws", cross) == 403
        assert await _handshake(port, "/ws", {"Host": f"127.0.0.1:{port}", "Origin": "null"}) == 403
        twice = [f"Host: 127.0.0.1:{port}", f"Host: evil.example:{port}"]
        assert await _handshake_lines(port, twice) == 403


async def test_allow_host_names_a_proxy_and_its_origin() -> None:
    options = ServerOptions(port=0, hosts=("app.example",), origins=("https://app.example",))
    server = Server({"echo": echo_factory()}, options)
    async with server.running():
        port = server.port
        proxied = {"Host": "App.Example", "Origin": "https://app.example"}
        assert await _handshake(port, "/ws", proxied) == 101
        assert await _handshake(port, "/ws", {"Host": f"app.example:{port}"}) == 101
        assert await _handshake(port, "/ws", {"Host": "other.example"}) == 403


async def _handshake_lines(port: int, header_lines: list[str]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [
        "GET /ws HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *header_lines,
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return int(status.split()[1])


async def test_token_rules_bearer_is_case_insensitive_and_every_credential_must_match() -> None:
    """Finding 2 (token part), as decided in docs/security.md."""
    server = Server({"echo": echo_factory()}, ServerOptions(port=0, token="s3cret"))
    async with server.running(), httpx.AsyncClient() as http:
        port = server.port
        host = {"Host": f"127.0.0.1:{port}"}
        assert await _handshake(port, "/ws", {**host, "Authorization": "bearer s3cret"}) == 101
        assert await _handshake(port, "/ws", {**host, "Authorization": "BEARER s3cret"}) == 101
        assert await _handshake(port, "/ws", {**host, "Authorization": "Basic s3cret"}) == 401
        assert await _handshake(port, "/ws?token=s3cret", host) == 101
        # two credentials: both must be right, whichever one is wrong
        right, wrong = {"Authorization": "Bearer s3cret"}, {"Authorization": "Bearer nope"}
        assert await _handshake(port, "/ws?token=nope", {**host, **right}) == 401
        assert await _handshake(port, "/ws?token=s3cret", {**host, **wrong}) == 401
        assert await _handshake(port, "/ws?token=s3cret", {**host, **right}) == 101
        assert await _handshake(port, "/ws?token=s3cret&token=nope", host) == 401
        # the static page has no secret in it: served without the token (it asks for one)
        page = await http.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200
        assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 401
        bearer = {"Authorization": "bearer s3cret"}
        assert (
            await http.get(f"http://127.0.0.1:{port}/metrics", headers=bearer)
        ).status_code == 200


async def test_audio_faster_than_the_message_rate_is_paced_not_dropped() -> None:
    """Finding 3: 20 ms frames at 20× real time got ``rate_limited`` and a third was lost."""
    limits = replace(Limits(), messages_per_s=100, message_burst=50)
    server = Server({"echo": echo_factory()}, ServerOptions(port=0, limits=limits))
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="echo", metrics_interval_ms=0)
        frames = 300  # 6 s of audio as fast as the socket takes it: 3× the frame rate limit
        await client.stream_audio(np.full(320 * frames, 0.01, np.float32), realtime=False)
        await client.commit()  # a text message right after the flood is not rate limited
        final = await client.wait_for(lambda r: isinstance(r.event, TranscriptFinal), 20)
        assert isinstance(final.event, TranscriptFinal)
        assert final.event.text == "heard 6.00 s"
        assert not client.of_type(ErrorEvent)
        session = next(iter(server.sessions.values()))
        assert session.transport_counters()["ws.audio.paced_ns"] > 0  # it had to wait
        assert session.source is not None
        assert session.source.samples_in == 320 * frames


async def test_text_floods_are_still_rate_limited_next_to_paced_audio() -> None:
    limits = replace(Limits(), messages_per_s=20, message_burst=10)
    server = Server({"echo": echo_factory()}, ServerOptions(port=0, limits=limits))
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="echo", metrics_interval_ms=0)
        for _ in range(30):
            await client.send_raw('{"type": "session.update"}')
        for _ in range(40):
            await client.send_audio(np.zeros(320, np.float32))
        await client.wait_for(lambda r: len(client.of_type(ErrorEvent)) >= 15, 10)
        assert {e.code for e in client.of_type(ErrorEvent)} == {"rate_limited"}
        session = next(iter(server.sessions.values()))
        for _ in range(100):
            if session.source is not None and session.source.samples_in == 40 * 320:
                break
            await LoopClock().sleep(20 * NS_PER_MS)
        assert session.source is not None
        assert session.source.samples_in == 40 * 320


async def test_shutdown_cuts_the_answer_short_with_response_done_then_1001() -> None:
    """Finding 4: on shutdown an answer in progress ended without ``response.done``."""
    server = Server({"echo": echo_factory(tokens=500)}, ServerOptions(port=0))
    running = server.running()
    await running.__aenter__()
    try:
        async with Client.connect(server.url) as client:
            await client.update(pipeline="echo")
            await client.send_audio(np.zeros(1600, np.float32))
            await client.commit()
            await client.wait_for(lambda r: isinstance(r.event, ResponseDelta), 10)
            await running.__aexit__(None, None, None)  # the server stops
            with pytest.raises(ConnectionError):
                await client.wait_for(lambda r: False, 10)
            done = client.of_type(ResponseDone)
            assert len(done) == 1
            assert done[0].cancelled
            assert client.closed_code == 1001
    finally:
        if server._ws is not None:
            await running.__aexit__(None, None, None)


async def test_a_closing_server_refuses_new_sessions_with_503() -> None:
    server = Server({"echo": echo_factory(tokens=500)}, ServerOptions(port=0))
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="echo")
        await client.send_audio(np.zeros(1600, np.float32))
        await client.commit()
        await client.wait_for(lambda r: isinstance(r.event, ResponseDelta), 10)
        async with asyncio.TaskGroup() as group:
            closing = group.create_task(server.close_sessions())
            await LoopClock().sleep(0)
            with pytest.raises(InvalidStatus) as refused:
                async with connect(server.url):
                    pass
            assert refused.value.response.status_code == 503
            await closing
        assert client.closed_code == 1001 or client.ws.close_code == 1001


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    port_file = tmp_path / "port"
    cmd = [sys.executable, "-m", "streamkit", "serve", "--no-models", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--port-file", str(port_file), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(600):
        if port_file.exists() and port_file.read_text():
            return proc, int(port_file.read_text())
        try:
            proc.wait(0.1)
        except subprocess.TimeoutExpired:
            continue
        break
    proc.kill()
    pytest.fail(f"serve did not start: {proc.communicate()[1]}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_closes_every_client_with_1001_like_sigint(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Finding 4: SIGTERM killed the server at once; every client saw 1006."""
    proc, port = _serve(tmp_path)
    try:
        url = f"ws://127.0.0.1:{port}/ws"
        async with Client.connect(url) as first, Client.connect(url) as second:
            await first.update(pipeline="echo")
            await first.send_audio(np.zeros(1600, np.float32))
            await first.commit()
            await first.wait_for(lambda r: isinstance(r.event, ResponseDelta), 10)
            proc.send_signal(sig)
            for client in (first, second):
                with pytest.raises(ConnectionError):
                    await client.wait_for(lambda r: False, 10)
                assert client.closed_code == 1001
            done = first.of_type(ResponseDone)  # cut short, or finished just before
            assert len(done) == 1
            assert isinstance(first.events[-1], ResponseDone)
        assert await asyncio.to_thread(proc.wait, 10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


async def test_all_of_127_0_0_0_8_is_loopback_and_needs_no_token() -> None:
    """Finding 6: code and docs disagreed about ``--host 127.0.0.2``."""
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "127.255.255.254", "::1"))
    assert not any(is_loopback(h) for h in ("128.0.0.1", "0.0.0.0", "10.0.0.1", "evil.example"))
    server = Server({"echo": echo_factory()}, ServerOptions(host="127.0.0.2", port=0))
    async with server.running():
        assert server.url.startswith("ws://127.0.0.2:")
        async with Client.connect(server.url) as client:
            assert client.created.session_id
        port = server.port
        assert await _handshake(port, "/ws", {"Host": f"127.0.0.2:{port}"}, "127.0.0.2") == 101
        assert await _handshake(port, "/ws", {"Host": f"x.test:{port}"}, "127.0.0.2") == 403
    for doc in ("docs/protocol.md", "docs/security.md"):
        text = (Path(__file__).parents[2] / doc).read_text()
        assert "127.0.0.0/8" in text, doc
        assert "other than 127.0.0.1" not in text, doc


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.skipif(heap.heap_stats() is None, reason="glibc only")
def test_trim_returns_memory_freed_on_many_threads_to_the_os() -> None:
    """Finding 5's mechanism: blocks freed on worker threads (as the models' native code
    does) stay in glibc's arenas and in RSS — a creep with nothing leaked — until the
    serve process's periodic trim (``streamkit/commands/heap.py``) gives them back."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 32 * 1024, 1000  # below the mmap threshold: from the arenas

    def churn() -> list[int]:
        blocks = [libc.malloc(size) for _ in range(count)]
        for block in blocks:
            ctypes.memset(block, 1, size)  # touched: resident
        kept = blocks[::50]  # one block in 50 stays: the arena cannot shrink from its top
        for index, block in enumerate(blocks):
            if index % 50:
                libc.free(block)
        return kept

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        kept = [b for blocks in pool.map(lambda _: churn(), range(4)) for b in blocks]
    try:
        before = heap.heap_stats()
        rss_before = _rss()
        heap.trim()
        rss_after = _rss()
        assert before is not None
        assert before.free > 4 * 25 * 1024 * 1024  # ~120 MB freed, still held by the arenas
        assert rss_before - rss_after > 50 * 1024 * 1024  # given back by the trim
    finally:
        for block in kept:
            libc.free(block)


async def test_the_heap_trimmer_runs_on_its_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[bool] = []
    real = heap.trim
    monkeypatch.setattr(heap, "trim", lambda: trims.append(real()) or True)
    async with heap.trimming(interval_s=0.05):
        await LoopClock().sleep(400 * NS_PER_MS)
    count = len(trims)
    assert count >= 1
    await LoopClock().sleep(200 * NS_PER_MS)
    assert len(trims) == count  # the block's end stopped it


async def test_deep_json_on_the_realtime_endpoint_gets_an_error_and_the_session_lives_on() -> None:
    """Finding 1 on ``/v1/realtime``: its codec parsed with the same recursive parser."""
    server = Server({"echo": echo_factory()}, ServerOptions(port=0))
    async with server.running():
        url = f"ws://127.0.0.1:{server.port}/v1/realtime?model=echo"
        async with connect(url, subprotocols=["realtime"]) as ws:  # type: ignore[list-item]
            assert "session.created" in str(await ws.recv())
            for text in DEEP[:4]:
                await ws.send(text)
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert reply["type"] == "error"
                assert reply["error"]["code"] == "invalid_json"
            await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "x"}}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["type"] == "session.updated"
