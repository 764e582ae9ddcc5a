"""OpenAI-compatible HTTP backend: streaming chat completions over Server-Sent Events.

How users scale the model out: vLLM, llama.cpp's server, llama-cpp-python's server, Ollama
and hosted APIs all speak ``POST {base_url}/chat/completions`` with ``"stream": true``. The
answer arrives as SSE ``data: {json chunk}`` events ending with ``data: [DONE]``; each
chunk's ``choices[0].delta.content`` is a text delta. Usage counts are requested with
``stream_options.include_usage`` and taken from the server when it sends them (otherwise
completion tokens are counted as content chunks and prompt tokens estimated). A stream that
ends with neither ``[DONE]`` nor a ``finish_reason`` raises :class:`LMServerError` (the server
failed mid-answer), so a truncated answer is never mistaken for a whole one.

Images: a message's ``image_jpeg`` (the fusion's keyframe) is sent as an ``image_url``
content part holding a ``data:image/jpeg;base64,…`` URL, the format vision-language servers
accept; ``send_images=False`` sends text only (for text-only servers).

Cancellation: closing the completion (or cancelling the task iterating it) closes the HTTP
response, which drops the connection; servers stop generating for a dropped client. The
network I/O is async (``httpx``); nothing blocks the loop. No prompt cache is driven from here:
:meth:`OpenAIHTTPBackend.prefill` is a no-op (servers such as llama.cpp reuse the common prefix
of consecutive prompts themselves).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamkit.core.http_client import openai_compatible_client
from streamkit.lm.backend import (
    BackendUnavailable,
    Completion,
    LMRequest,
    Message,
    Usage,
    approx_token_count,
)

__all__ = ["LMServerError", "OpenAIHTTPBackend", "OpenAIHTTPConfig", "SSEDecoder"]


class LMServerError(RuntimeError):
    """The server answered with an error (HTTP status or an ``error`` event).

    ``retryable``: a server-side failure (HTTP 5xx) that the same request may not meet again.
    """

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class OpenAIHTTPConfig:
    """Where and what to ask.

    Attributes:
        base_url: API root including ``/v1``, e.g. ``http://127.0.0.1:8000/v1``.
        model: model name sent in the request.
        api_key: sent as ``Authorization: Bearer …`` when set.
        timeout_s: connect/read timeout (seconds) for each request.
        send_images: send keyframes as image content parts.
        extra_body: extra JSON fields merged into each request (server-specific options).
        name: backend name in metrics.
        retries: a request that failed before its first delta for a reason that may pass
            (server unreachable or connection reset, HTTP 5xx) is sent again this many times;
            one that failed after a delta is not (the answer would repeat itself).
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key: str | None = None
    timeout_s: float = 30.0
    send_images: bool = True
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    name: str = "openai_http"
    retries: int = 1


class SSEDecoder:
    """Incremental Server-Sent Events parser (pure): feed lines, get each event's data.

    Follows the SSE rules that matter here: ``data:`` lines of one event are joined by
    newlines, a blank line ends the event, lines starting with ``:`` are comments, other
    fields (``event:``, ``id:``, ``retry:``) are ignored.
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> Iterator[str]:
        """Process one line (without its newline); yields an event's data when it ends."""
        line = line.rstrip("\r")
        if not line:
            if self._data:
                data, self._data = "\n".join(self._data), []
                yield data
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)

    def flush(self) -> Iterator[str]:
        """End of stream: the pending event, if any."""
        yield from self.feed("")


def _content(message: Message, send_images: bool) -> str | list[dict[str, Any]]:
    if not (send_images and message.image_jpeg):
        return message.content
    url = "data:image/jpeg;base64," + base64.b64encode(message.image_jpeg).decode("ascii")
    return [
        {"type": "text", "text": message.content},
        {"type": "image_url", "image_url": {"url": url}},
    ]


class OpenAIHTTPBackend:
    """Streams answers from an OpenAI-compatible server (see the module docstring).

    Args:
        config: server address, model, key.
        transport: an ``httpx`` transport (tests); default: real network.
    """

    def __init__(self, config: OpenAIHTTPConfig | None = None, *, transport: Any = None) -> None:
        self.config = cfg = config or OpenAIHTTPConfig()
        self.name = cfg.name
        self._httpx: Any
        self._client: Any
        try:
            self._httpx, self._client = openai_compatible_client(
                cfg.base_url, cfg.api_key, cfg.timeout_s, transport
            )
        except ImportError as error:
            raise BackendUnavailable("the HTTP backend needs `pip install httpx`") from error
        self._warm = False

    def count_tokens(self, text: str) -> int:
        return approx_token_count(text)

    def body(self, request: LMRequest) -> dict[str, Any]:
        """The JSON request body for ``request`` (public for inspection and tests)."""
        cfg = self.config
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": [
                {"role": m.role, "content": _content(m, cfg.send_images)} for m in request.messages
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        body.update(cfg.extra_body)
        return body

    def _unreachable(self, error: Exception) -> BackendUnavailable:
        return BackendUnavailable(
            f"cannot reach the language model server at {self.config.base_url} ({error}); "
            "start it (e.g. `python -m llama_cpp.server --model FILE.gguf`) or pass its base_url"
        )

    async def warmup(self) -> None:
        """Check that the server answers (``GET /models``), once per backend: every session
        of the process shares it, and a busy server (llama-cpp-python's answers ``/models``
        only between generations) must not fail a new session's setup."""
        if self._warm:
            return
        try:
            response = await self._client.get("models")
        except self._httpx.TransportError as error:
            raise self._unreachable(error) from error
        if response.status_code >= 400:
            raise LMServerError(f"GET models: HTTP {response.status_code}: {response.text[:200]}")
        self._warm = True

    async def prefill(self, request: LMRequest) -> None:
        return None

    def complete(self, request: LMRequest) -> Completion:
        usage = Usage()
        return Completion(self._generate(request, usage), usage)

    async def _generate(self, request: LMRequest, usage: Usage) -> AsyncIterator[str]:
        """One answer; retried while nothing was yielded yet (a shared server behind many
        workers fails a request now and then: a worker died mid-request, a restart)."""
        attempts = 1 + max(0, self.config.retries)
        for attempt in range(attempts):
            yielded = False
            try:
                async for delta in self._attempt(request, usage):
                    yielded = True
                    yield delta
                return
            except (LMServerError, BackendUnavailable) as error:
                transient = isinstance(error, BackendUnavailable) or (
                    isinstance(error, LMServerError) and error.retryable
                )
                if yielded or not transient or attempt + 1 == attempts:
                    raise

    async def _attempt(self, request: LMRequest, usage: Usage) -> AsyncIterator[str]:
        body = self.body(request)
        estimated_prompt = sum(approx_token_count(m.content) for m in request.messages)
        counted = 0
        finished = False  # a choice reported finish_reason
        decoder = SSEDecoder()
        try:
            async with self._client.stream("POST", "chat/completions", json=body) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode(errors="replace")[:300]
                    raise LMServerError(
                        f"chat/completions: HTTP {response.status_code}: {detail}",
                        retryable=response.status_code >= 500,
                    )
                async for line in response.aiter_lines():
                    for data in decoder.feed(line):
                        if data.strip() == "[DONE]":
                            return
                        deltas, finishes = self._parse(data, usage)
                        finished = finished or finishes
                        for delta in deltas:
                            counted += 1
                            usage.completion_tokens = max(usage.completion_tokens, counted)
                            usage.prompt_tokens = usage.prompt_tokens or estimated_prompt
                            yield delta
        except self._httpx.TransportError as error:
            raise self._unreachable(error) from error
        if not finished:
            raise LMServerError(
                "the server ended the stream without finishing the answer (no [DONE], no "
                "finish_reason); see the server's log"
            )

    @staticmethod
    def _parse(data: str, usage: Usage) -> tuple[list[str], bool]:
        """One stream event: its text deltas, and whether a choice reported finish_reason
        (reported usage is written into ``usage``)."""
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as error:
            raise LMServerError(f"malformed stream event: {data[:200]!r}") from error
        if "error" in chunk:
            raise LMServerError(f"server error: {chunk['error']}")
        reported = chunk.get("usage") or {}
        if reported:
            usage.prompt_tokens = int(reported.get("prompt_tokens") or usage.prompt_tokens)
            usage.completion_tokens = int(
                reported.get("completion_tokens") or usage.completion_tokens
            )
        deltas: list[str] = []
        finished = False
        for choice in chunk.get("choices") or []:
            finished = finished or bool(choice.get("finish_reason"))
            text = (choice.get("delta") or {}).get("content")
            if text:
                deltas.append(str(text))
        return deltas, finished

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
