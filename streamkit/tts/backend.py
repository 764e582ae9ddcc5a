"""The text-to-speech engine protocol: an async, cancellable stream of audio for a text.

An engine is loaded once per process and shared by every session; it serialises its model
calls itself (a :class:`~streamkit.core.compute.ModelSlot`). :meth:`TTSEngine.synthesize` returns a
:class:`Speech`:

```python
speech = engine.synthesize("The capital of France is Paris.")
async for chunk in speech:          # media.AudioChunk: float32 mono at chunk.sample_rate
    ...
await speech.aclose()               # stop early (also what task cancellation does)
```

Cancelling the task that iterates (or calling ``aclose``) stops within one chunk: a model call
in flight finishes in its thread and its result is discarded; an HTTP stream is closed. Chunks
come as the engine makes them (a local engine: one chunk per clause it synthesised; an HTTP
engine: what the network delivers); the TTS stage re-slices and paces them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from streamkit.core.media import AudioChunk
from streamkit.core.streams import GeneratorStream

__all__ = [
    "Speech",
    "TTSEngine",
    "TTSUnavailable",
    "lead_in",
    "pcm16_bytes",
    "pcm16_samples",
    "speakable",
]


class TTSUnavailable(RuntimeError):
    """The voice or runtime is missing or unreachable; the message says what to install/pass."""


@dataclass(slots=True)
class Speech(GeneratorStream[AudioChunk]):
    """A running synthesis: async-iterate for :class:`~streamkit.core.media.AudioChunk` values.

    Wraps the engine's async generator; ``aclose`` stops it (idempotent). ``finished`` turns
    True once every chunk was delivered.
    """


@runtime_checkable
class TTSEngine(Protocol):
    """A voice that turns text into audio. Shared by sessions; safe to call concurrently from
    tasks of one event loop (calls are serialised inside).

    ``sample_rate`` (Hz) is the rate of the chunks it yields.
    """

    name: str
    sample_rate: int

    async def warmup(self) -> None:
        """Load and exercise the voice once so the first answer is not cold."""
        ...

    def synthesize(self, text: str) -> Speech:
        """Start speaking ``text``; see the module docstring."""
        ...


_MARKUP = re.compile(r"[*#`_~<>\[\]{}|\\^]+")
_SPACES = re.compile(r"\s+")


def speakable(text: str) -> str:
    """``text`` without markup characters a voice would spell out (``**``, ``#``, backticks),
    with whitespace collapsed; ``""`` when nothing pronounceable is left."""
    cleaned = _SPACES.sub(" ", _MARKUP.sub(" ", text)).strip()
    return cleaned if any(c.isalnum() for c in cleaned) else ""


def lead_in(
    samples: npt.NDArray[np.float32], rate: int, threshold: float = 0.01, keep_ms: int = 20
) -> int:
    """Index where ``samples`` (at ``rate`` Hz) should start so a voice's lead-in silence
    is not sent: ``keep_ms`` before the first sample over ``threshold`` (|x|; 0.01 ≈ -40
    dBFS); ``len(samples)`` when none is (all of it silence so far)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if not len(loud):
        return len(samples)
    return max(0, int(loud[0]) - rate * keep_ms // 1000)


def pcm16_bytes(samples: npt.NDArray[np.float32]) -> bytes:
    """Float samples in [-1, 1] as little-endian PCM16 bytes (clipped)."""
    pcm = np.clip(samples, -1.0, 32767 / 32768) * 32768.0
    return np.round(pcm).astype("<i2").tobytes()


def pcm16_samples(data: bytes) -> npt.NDArray[np.float32]:
    """Little-endian PCM16 bytes as float32 samples in [-1, 1)."""
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)
