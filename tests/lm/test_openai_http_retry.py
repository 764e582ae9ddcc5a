"""The HTTP backend retries a request that failed before its first delta, never one that
failed mid-answer (a small stdlib HTTP server on loopback scripts the failures)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from streamkit.lm.backend import LMRequest, Message
from streamkit.lm.openai_http import LMServerError, OpenAIHTTPBackend, OpenAIHTTPConfig

pytest.importorskip("httpx")

REQUEST = LMRequest((Message("user", "hi"),), max_tokens=4)


def _chunk(text: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    return f"data: {json.dumps({'choices': [choice]})}\n\n".encode()


class Script(http.server.BaseHTTPRequestHandler):
    plan: ClassVar[list[str]] = []
    posts: ClassVar[list[int]] = []
    gets: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        step = self.plan[len(self.posts)] if len(self.posts) < len(self.plan) else "ok"
        self.posts.append(1)
        if step == "500":
            self.send_response(500)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"oops")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(_chunk("Hel"))
        if step == "cut":  # one delta, then the stream ends unfinished
            self.wfile.flush()
            return
        self.wfile.write(_chunk("lo", "stop") + b"data: [DONE]\n\n")

    def do_GET(self) -> None:
        self.gets.append(1)
        body = b'{"object": "list", "data": [{"id": "default"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    Script.posts = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Script)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        thread.join(5)


async def _answer(backend: OpenAIHTTPBackend) -> str:
    completion = backend.complete(REQUEST)
    try:
        return "".join([delta async for delta in completion])
    finally:
        await completion.aclose()


async def test_a_request_that_failed_before_any_delta_is_sent_again(server: str) -> None:
    Script.plan = ["500", "ok"]
    backend = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=server))
    assert await _answer(backend) == "Hello"
    assert len(Script.posts) == 2


async def test_no_retry_once_a_delta_went_out_and_none_when_disabled(server: str) -> None:
    Script.plan = ["cut", "ok"]
    backend = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=server))
    with pytest.raises(LMServerError, match="without finishing"):
        await _answer(backend)
    assert len(Script.posts) == 1
    Script.plan, Script.posts = ["500", "ok"], []
    strict = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=server, retries=0))
    with pytest.raises(LMServerError, match="HTTP 500"):
        await _answer(strict)
    assert len(Script.posts) == 1


async def test_warmup_asks_the_server_once_per_backend(server: str) -> None:
    Script.gets = []
    backend = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=server))
    for _ in range(3):  # every session's setup warms the shared backend
        await backend.warmup()
    assert len(Script.gets) == 1
