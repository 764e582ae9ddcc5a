"""streamkit: real-time multimodal assistants on one shared clock.

The core (clock, packets, edges, stages, pipeline, metrics) is imported here; capture,
encoders, language models and transport live in subpackages with heavier dependencies.
"""

from streamkit.clock import NS_PER_MS, NS_PER_S, Clock, LoopClock, ManualClock, Nanos
from streamkit.edge import Edge, EdgeClosed, EdgeStats, Policy
from streamkit.media import ASR_SAMPLE_RATE, AudioChunk, VideoFrame
from streamkit.metrics import MetricsRegistry
from streamkit.packet import EndOfStream, Flush, Gap, Packet
from streamkit.pipeline import Pipeline, StageFailed
from streamkit.stage import Stage, StageContext, chain, function_stage

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
    "Stage",
    "StageContext",
    "StageFailed",
    "VideoFrame",
    "chain",
    "function_stage",
]

__version__ = "0.1.0"
