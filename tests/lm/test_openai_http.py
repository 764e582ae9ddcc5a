"""The OpenAI-compatible HTTP backend against a REAL server on loopback.

The server is llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``,
extra ``llama-cpp-python[server]``) serving the bundled SmolLM2 GGUF, started as a subprocess
on a free port. The SSE parser and the request body are also unit-tested without a server.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from streamkit.core.clock import NS_PER_S, LoopClock
from streamkit.core.events import Word
from streamkit.lm.backend import BackendUnavailable, LMRequest, Message, approx_token_count
from streamkit.lm.fusion import FusionBuilder, FusionConfig
from streamkit.lm.openai_http import (
    LMServerError,
    OpenAIHTTPBackend,
    OpenAIHTTPConfig,
    SSEDecoder,
)

_WORDS = ["What", "is", "the", "capital", "of", "France?"]
_ASKED = [Word(w, i, i + 1, 1.0) for i, w in enumerate(_WORDS)]
QUESTION = LMRequest(  # the context the assistant sends (instructions, policy, examples)
    FusionBuilder(FusionConfig(), approx_token_count).build([], _ASKED, []).messages,
    max_tokens=24,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    from streamkit.lm.models import bundled_model_path

    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(bundled_model_path()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", "1", "--n_ctx", "1024",
    ]  # fmt: skip
    log_path = tmp_path_factory.mktemp("lm_server") / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):  # ≤ 120 s: waits on the process, so a crash ends it at once
            try:
                if httpx.get(f"{base}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            err = log_path.read_text(errors="replace")
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {err[-2000:]}")
        else:
            pytest.fail("llama_cpp.server did not become ready in 120 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- pure parts --------------------------------------------------------------------------


def test_sse_decoder_joins_data_lines_and_skips_comments() -> None:
    decoder = SSEDecoder()
    lines = [": ping", "event: message", 'data: {"a":', "data: 1}", "", "", "data: [DONE]"]
    events = [e for line in lines for e in decoder.feed(line)] + list(decoder.flush())
    assert events == ['{"a":\n1}', "[DONE]"]


def test_request_body_carries_the_keyframe_as_a_data_url() -> None:
    backend = OpenAIHTTPBackend(OpenAIHTTPConfig(model="m", api_key="k"))
    jpeg = b"\xff\xd8\xff\xe0fake"
    request = LMRequest((Message("user", "what am I holding", image_jpeg=jpeg),), max_tokens=5)
    body = backend.body(request)
    assert body["stream"] is True
    assert body["model"] == "m"
    [message] = body["messages"]
    text, image = message["content"]
    assert text == {"type": "text", "text": "what am I holding"}
    assert image["image_url"]["url"] == "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    text_only = OpenAIHTTPBackend(OpenAIHTTPConfig(send_images=False)).body(request)
    assert text_only["messages"][0]["content"] == "what am I holding"


# -- against the real server -------------------------------------------------------------


@pytest.mark.slow
async def test_streams_deltas_from_a_real_server(server: str) -> None:
    backend = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=server))
    try:
        await backend.warmup()
        completion = backend.complete(QUESTION)
        deltas = [d async for d in completion]
        text = "".join(deltas)
        assert len(deltas) >= 3
        assert "Paris" in text
        assert completion.finished
        assert completion.usage.completion_tokens >= len(deltas) - 1
        assert completion.usage.prompt_tokens > 10
    finally:
        await backend.aclose()
    # same GGUF, greedy: the streamed text is exactly what the in-process backend says
    from streamkit.lm.llamacpp import LlamaCppBackend

    local = LlamaCppBackend()
    assert text == "".join([d async for d in local.complete(QUESTION)])


@pytest.mark.slow
async def test_cancel_mid_stream_frees_the_server(server: str) -> None:
    backend = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=server))
    clock = LoopClock()
    long = LMRequest(
        (Message("user", "Write a very long story about a dragon, with many chapters."),),
        max_tokens=400,
    )
    try:
        completion = backend.complete(long)
        got: list[str] = []
        stamps: list[int] = []
        async for delta in completion:
            got.append(delta)
            stamps.append(clock.now())
            if len(got) == 4:
                break
        started = clock.now()
        await completion.aclose()
        assert clock.now() - started < NS_PER_S // 2  # closing does not wait for the server
        assert len(got) == 4
        per_token = (stamps[-1] - stamps[0]) // 3
        # the server dropped the abandoned answer: a new one starts before the 396 remaining
        # tokens of the old one could have been generated (how soon is up to the server:
        # llama-cpp-python notices the closed connection or interrupts for the new request)
        started = clock.now()
        again = backend.complete(QUESTION)
        text = "".join([d async for d in again])
        waited = clock.now() - started
        assert "Paris" in text
        print(f"per token {per_token / 1e6:.1f} ms, next answer done after {waited / 1e6:.0f} ms")
        assert waited < 396 * per_token, "server still busy with the cancelled answer"
    finally:
        await backend.aclose()


@pytest.mark.slow
async def test_image_parts_to_a_text_only_server_fail_clearly(server: str) -> None:
    request = LMRequest((Message("user", "what is this?", image_jpeg=b"\xff\xd8jpeg"),))
    backend = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=server))
    try:
        with pytest.raises(LMServerError, match="without finishing"):
            _ = [d async for d in backend.complete(request)]
    finally:
        await backend.aclose()
    text_only = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=server, send_images=False))
    try:
        assert [d async for d in text_only.complete(request)]
    finally:
        await text_only.aclose()


async def test_server_down_is_a_clear_error() -> None:
    backend = OpenAIHTTPBackend(OpenAIHTTPConfig(base_url=f"http://127.0.0.1:{free_port()}/v1"))
    try:
        with pytest.raises(BackendUnavailable, match="cannot reach the language model server"):
            _ = [d async for d in backend.complete(QUESTION)]
        with pytest.raises(BackendUnavailable, match="base_url"):
            await backend.warmup()
    finally:
        await backend.aclose()
