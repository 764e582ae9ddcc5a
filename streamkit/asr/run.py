"""Run the ASR stage over an in-memory audio array: paced source → ASR → collecting sink.

Used by ``streamkit transcribe --stream``, ``bench/asr.py`` and the tests. The source puts
one chunk every ``chunk_ms`` at the time its last sample would have been captured (anchor
pacing on the shared clock: ``base_time + chunk end``), so on a virtual-time loop a file
streams "in real time" in milliseconds of wall time while the model's compute is charged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from streamkit.asr.core import AsrConfig
from streamkit.asr.stage import AsrStage
from streamkit.asr.whisper import WhisperModelShared
from streamkit.core.clock import Nanos
from streamkit.core.edge import Policy
from streamkit.core.media import ASR_SAMPLE_RATE, AudioChunk, samples_to_ns
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import StageContext

__all__ = [
    "ArraySource",
    "CollectSink",
    "StreamRun",
    "stream_array",
]

R = TypeVar("R")


class ArraySource:
    """Source stage: 16 kHz mono ``audio`` as ``Packet[AudioChunk]`` on port ``audio``, paced."""

    outputs: tuple[str, ...] = ("audio",)

    def __init__(self, audio: npt.NDArray[np.float32], chunk_ms: int = 20, name: str = "src"):
        self.name = name
        self.audio = np.asarray(audio, dtype=np.float32)
        self.chunk = ASR_SAMPLE_RATE * chunk_ms // 1000

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output("audio")
        for seq, begin in enumerate(range(0, len(self.audio), self.chunk)):
            samples = self.audio[begin : begin + self.chunk]
            pts = ctx.base_time + samples_to_ns(begin, ASR_SAMPLE_RATE)
            end = ctx.base_time + samples_to_ns(begin + len(samples), ASR_SAMPLE_RATE)
            await ctx.clock.sleep_until(end)
            await out.put(Packet("audio", seq, pts, end - pts, AudioChunk(samples)))


class CollectSink:
    """Sink stage: keeps ``(receive time, packet)`` for everything on port ``in``."""

    def __init__(self, name: str = "sink") -> None:
        self.name = name
        self.received: list[tuple[Nanos, Packet[Any]]] = []

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input("in"):
            if isinstance(item, Packet):
                self.received.append((ctx.clock.now(), item))


@dataclass
class StreamRun:
    """What one streamed run produced; times are absolute shared-clock ns."""

    base_time: Nanos
    events: list[tuple[Nanos, Packet[Any]]]
    metrics: MetricsRegistry
    stage: AsrStage
    extra: dict[str, Any] = field(default_factory=dict)


async def stream_array(
    audio: npt.NDArray[np.float32],
    model: WhisperModelShared,
    config: AsrConfig | None = None,
    chunk_ms: int = 20,
) -> StreamRun:
    """Stream ``audio`` through a fresh :class:`AsrStage` on the running loop."""
    metrics = MetricsRegistry()
    pipeline = Pipeline(metrics=metrics)
    audio_edge = pipeline.edge("audio", capacity=64, policy=Policy.BLOCK)
    events_edge = pipeline.edge("asr.out", capacity=64, policy=Policy.BLOCK)
    stage = AsrStage(model, config)
    sink = CollectSink()
    pipeline.add(ArraySource(audio, chunk_ms), outputs={"audio": audio_edge})
    pipeline.add(stage, inputs={"in": audio_edge}, outputs={"out": events_edge})
    pipeline.add(sink, inputs={"in": events_edge})
    await pipeline.run()
    base = pipeline.state.base_time or 0
    return StreamRun(base, sink.received, metrics, stage)
