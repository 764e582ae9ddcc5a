"""A scripted voice that charges virtual time: for tests and demos without a model.

:class:`ScriptedVoice` "speaks" a text as a tone whose length is proportional to the text
(``ns_per_char`` of audio per character, ~15 characters per second like speech), waiting
``first_chunk_ns`` + ``rtf`` × the audio's duration on the clock before the audio comes, in
chunks of ``chunk_ms``. On a virtual-time loop (looptime) this reproduces the latency structure
of a real local voice in zero wall time. It never blocks the loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from streamkit.core.clock import NS_PER_MS, Clock, LoopClock, Nanos
from streamkit.core.media import AudioChunk, ns_to_samples
from streamkit.tts.backend import Speech

__all__ = ["ScriptedVoice"]


@dataclass
class ScriptedVoice:
    """Fake voice: deterministic audio, virtual cost.

    Attributes:
        sample_rate: Hz of the chunks.
        ns_per_char: audio duration per character of text.
        first_chunk_ns: fixed cost before the first chunk of a text.
        rtf: compute cost per second of audio (real-time factor).
        chunk_ms: chunk length (the last chunk may be shorter).
        frequency: the tone (Hz); amplitude 0.3.
        clock: where costs are charged (default: the running loop's clock).
        texts: every text asked for (for assertions); ``chunks`` counts chunks yielded.
    """

    sample_rate: int = 16_000
    ns_per_char: Nanos = 65 * NS_PER_MS
    first_chunk_ns: Nanos = 30 * NS_PER_MS
    rtf: float = 0.2
    chunk_ms: int = 200
    frequency: float = 220.0
    clock: Clock = field(default_factory=LoopClock)
    name: str = "scripted"
    texts: list[str] = field(default_factory=list)
    chunks: int = 0

    async def warmup(self) -> None:
        return None

    def duration_of(self, text: str) -> Nanos:
        """The audio duration (ns) this voice gives ``text``."""
        return len(text.strip()) * self.ns_per_char

    def synthesize(self, text: str) -> Speech:
        self.texts.append(text)
        return Speech(self._speak(text))

    async def _speak(self, text: str) -> AsyncIterator[AudioChunk]:
        total = ns_to_samples(self.duration_of(text), self.sample_rate)
        step = max(1, self.sample_rate * self.chunk_ms // 1000)
        await self.clock.sleep(self.first_chunk_ns)
        for start in range(0, total, step):
            n = min(step, total - start)
            t = (start + np.arange(n)) / self.sample_rate
            samples = (0.3 * np.sin(2 * np.pi * self.frequency * t)).astype(np.float32)
            await self.clock.sleep(round(self.rtf * n * 1_000_000_000 / self.sample_rate))
            self.chunks += 1
            yield AudioChunk(samples, self.sample_rate)
