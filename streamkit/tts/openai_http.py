"""OpenAI-compatible speech over HTTP: ``POST {base_url}/audio/speech``, streamed raw PCM.

How users put the voice on a GPU server: Kokoro-FastAPI, speaches, vLLM-omni and OpenAI itself
answer ``{"model", "input", "voice", "response_format": "pcm"}`` with a chunked body of raw
16-bit little-endian mono PCM (24 kHz for OpenAI and Kokoro; ``sample_rate`` says otherwise).
Chunks are yielded as they arrive, so the first audio plays while the server is still
synthesising; an odd trailing byte is held until the next chunk.

Cancellation: closing the speech (or cancelling the task iterating it) closes the HTTP
response, which drops the connection. The network I/O is async (``httpx``); nothing blocks
the loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamkit.core.http_client import openai_compatible_client
from streamkit.core.media import AudioChunk
from streamkit.tts.backend import Speech, TTSUnavailable, pcm16_samples

__all__ = ["OpenAISpeechConfig", "OpenAISpeechEngine", "TTSServerError"]


class TTSServerError(RuntimeError):
    """The server answered with an error status."""


@dataclass(frozen=True, slots=True)
class OpenAISpeechConfig:
    """Where and what to ask.

    Attributes:
        base_url: API root including ``/v1``, e.g. ``http://127.0.0.1:8880/v1``.
        model / voice: sent in the request (``tts-1`` / ``alloy``; Kokoro: ``kokoro`` /
            ``af_heart``).
        sample_rate: Hz of the PCM the server returns.
        speed: speaking rate (1.0 normal).
        api_key: sent as ``Authorization: Bearer …`` when set.
        timeout_s: connect/read timeout (seconds).
        extra_body: extra JSON fields merged into each request.
        name: engine name in metrics.
    """

    base_url: str = "http://127.0.0.1:8880/v1"
    model: str = "tts-1"
    voice: str = "alloy"
    sample_rate: int = 24_000
    speed: float = 1.0
    api_key: str | None = None
    timeout_s: float = 30.0
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    name: str = "openai_http"


class OpenAISpeechEngine:
    """Speech from an OpenAI-compatible server (see the module docstring).

    Args:
        config: server address, model, voice, key.
        transport: an ``httpx`` transport (tests); default: real network.
    """

    def __init__(self, config: OpenAISpeechConfig | None = None, *, transport: Any = None) -> None:
        self.config = cfg = config or OpenAISpeechConfig()
        self.name = cfg.name
        self.sample_rate = cfg.sample_rate
        self._httpx: Any
        self._client: Any
        try:
            self._httpx, self._client = openai_compatible_client(
                cfg.base_url, cfg.api_key, cfg.timeout_s, transport
            )
        except ImportError as error:
            raise TTSUnavailable("the HTTP voice needs `pip install httpx`") from error

    def body(self, text: str) -> dict[str, Any]:
        """The JSON request body for ``text`` (public for inspection and tests)."""
        cfg = self.config
        body: dict[str, Any] = {
            "model": cfg.model,
            "input": text,
            "voice": cfg.voice,
            "response_format": "pcm",
            "speed": cfg.speed,
        }
        body.update(cfg.extra_body)
        return body

    def _unreachable(self, error: Exception) -> TTSUnavailable:
        return TTSUnavailable(
            f"cannot reach the speech server at {self.config.base_url} ({error}); start it "
            "(e.g. Kokoro-FastAPI) or pass its base url"
        )

    async def warmup(self) -> None:
        """Synthesise a short text once (checks the server answers)."""
        async for _ in self.synthesize("Hello."):
            pass

    def synthesize(self, text: str) -> Speech:
        return Speech(self._speak(text))

    async def _speak(self, text: str) -> AsyncIterator[AudioChunk]:
        odd = b""
        try:
            async with self._client.stream("POST", "audio/speech", json=self.body(text)) as resp:
                if resp.status_code >= 400:
                    detail = (await resp.aread()).decode(errors="replace")[:300]
                    raise TTSServerError(f"audio/speech: HTTP {resp.status_code}: {detail}")
                async for data in resp.aiter_bytes():
                    data = odd + data
                    cut = len(data) - len(data) % 2
                    odd = data[cut:]
                    if cut:
                        yield AudioChunk(pcm16_samples(data[:cut]), self.sample_rate)
        except self._httpx.TransportError as error:
            raise self._unreachable(error) from error

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
