"""streamkit: real-time multimodal assistants on one shared clock.

The core (clock, packets, edges, stages, pipeline, metrics) lives in :mod:`streamkit.core` and
is re-exported here; each capability (capture, ASR, vision, turn, language models, voice,
transport, recording) is a subpackage with its heavier dependencies imported lazily.
"""

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Clock, LoopClock, ManualClock, Nanos
from streamkit.core.edge import Edge, EdgeClosed, EdgeStats, Policy
from streamkit.core.function_stage import chain, function_stage
from streamkit.core.media import ASR_SAMPLE_RATE, AudioChunk, VideoFrame
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import EndOfStream, Flush, Gap, Packet
from streamkit.core.pipeline import Pipeline, StageFailed
from streamkit.core.stage import Source, Stage, StageContext

__all__ = [
    "ASR_SAMPLE_RATE",
    "NS_PER_MS",
    "NS_PER_S",
    "AudioChunk",
    "Clock",
    "Edge",
    "EdgeClosed",
    "EdgeStats",
    "EndOfStream",
    "Flush",
    "Gap",
    "LoopClock",
    "ManualClock",
    "MetricsRegistry",
    "Nanos",
    "Packet",
    "Pipeline",
    "Policy",
    "Source",
    "Stage",
    "StageContext",
    "StageFailed",
    "VideoFrame",
    "chain",
    "function_stage",
]

__version__ = "0.1.0"
