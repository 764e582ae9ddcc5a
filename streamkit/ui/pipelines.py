"""The best pipeline this install can run, as a replay-harness style factory.

``(source, sink, metrics) -> (Pipeline, controls)``, in order of preference:

1. ``assistant`` — :mod:`pipelines.assistant` (ASR + vision + fused LM), when it is installed;
2. ``asr`` — streaming ASR only (:class:`streamkit.asr.stage.AsrStage`, bundled Whisper);
3. ``vad`` — an energy voice-activity detector (no models; speech start/stop events).

``virtual=True`` asks for model calls that charge virtual time (replay on a virtual loop).
Loading models blocks (seconds); do it before starting the loop's real-time work.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamkit.core.clock import NS_PER_MS, Nanos
from streamkit.core.edge import Policy
from streamkit.core.events import SpeechStarted, SpeechStopped
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Source, Stage, StageContext

__all__ = ["Discard", "EnergyVad", "Factory", "LoadedPipeline", "load_pipeline", "speed_problem"]

Factory = Callable[[Source, Stage, MetricsRegistry], tuple[Pipeline, Any]]


@dataclass
class LoadedPipeline:
    """A factory and what it is (``kind``: assistant / captions / asr / echo) with a human note."""

    kind: str
    factory: Factory
    note: str = ""


class EnergyVad:
    """Energy VAD stage: ``audio`` in, SpeechStarted/SpeechStopped out on ``out`` (no model).

    A 20 ms chunk with RMS ≥ ``threshold`` is voiced; an utterance ends ``hangover_ms`` after
    the last voiced chunk. Utterance ids ``vad-<n>`` are the packets' lineage.
    """

    def __init__(self, threshold: float = 0.02, hangover_ms: int = 700) -> None:
        self.name = "vad"
        self.threshold = threshold
        self.hangover: Nanos = hangover_ms * NS_PER_MS

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output()
        seq = 0
        uid: str | None = None
        last_voiced: Nanos = 0
        n = 0
        async for item in ctx.input("in"):
            if not isinstance(item, Packet):
                continue
            samples = item.payload.samples
            rms = float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
            if rms >= self.threshold:
                last_voiced = item.end
                if uid is None:
                    uid, n = f"vad-{n}", n + 1
                    await out.put(Packet("speech", seq, item.pts, 0, SpeechStarted(uid, item.pts),
                                         lineage=uid))
                    seq += 1
            elif uid is not None and item.end - last_voiced > self.hangover:
                await out.put(Packet("speech", seq, last_voiced, 0,
                                     SpeechStopped(uid, last_voiced), lineage=uid))
                seq, uid = seq + 1, None
        if uid is not None:  # end of stream inside an utterance: close it
            await out.put(Packet("speech", seq, last_voiced, 0, SpeechStopped(uid, last_voiced),
                                 lineage=uid))


class Discard:
    """Sink stage that consumes and drops its input (keeps an unused source port flowing)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for _item in ctx.input("in"):
            pass


def _audio_only(stage: Stage) -> Factory:
    def factory(source: Source, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        pipe = Pipeline(metrics=metrics)
        audio = pipe.edge("audio", 64, Policy.BLOCK)
        events = pipe.edge("events", 64, Policy.BLOCK)
        outputs = {"audio": audio}
        if "video" in source.outputs:
            # nothing here looks at video, but apps tapping the source (demo view, replay
            # --out recording) still want the frames: consume them at the newest-frame policy
            video = pipe.edge("video", 1, Policy.LATEST)
            outputs["video"] = video
            pipe.add(Discard("video.sink"), inputs={"in": video})
        pipe.add(source, outputs=outputs)
        pipe.add(stage, inputs={"in": audio}, outputs={"out": events})
        pipe.add(sink, inputs={"in": events})
        return pipe, None

    return factory


def _assistant(virtual: bool, base: Any = None, lm: bool = True) -> LoadedPipeline | None:
    try:
        assistant: Any = importlib.import_module("streamkit.pipelines.assistant")
    except ImportError:
        return None
    # pipelines/assistant.py is the lead's; vision is optional until its encoder is installed.
    has_vision = importlib.util.find_spec("streamkit.vision.stage") is not None
    from dataclasses import replace

    base = base if base is not None else assistant.AssistantConfig()
    config = replace(
        base, compute="virtual" if virtual else "thread", vision=base.vision and has_vision
    )
    if not lm:
        config = replace(config, lm=replace(config.lm, engine="none"))
    models = assistant.Models.load(config)
    if lm and not virtual:  # the first answer and the shared prompt prefix cost seconds on a
        asyncio.run(models.warmup(config))  # small CPU model: before the session, as serve does

    def factory(source: Source, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        pipe, controls = assistant.build(config, models, source, sink, metrics=metrics)
        return pipe, controls

    if not lm:
        return LoadedPipeline("captions", factory, "ASR + vision, no language model")
    return LoadedPipeline("assistant", factory, "full assistant (ASR + vision + LM)")


def _asr(virtual: bool) -> LoadedPipeline | None:
    try:
        from streamkit.asr.stage import AsrConfig, AsrStage
        from streamkit.asr.whisper import ModelNotFound, WhisperModelShared
    except ImportError:
        return None
    try:
        model = WhisperModelShared()
    except ModelNotFound as error:
        return LoadedPipeline("vad", _audio_only(EnergyVad()), f"no ASR model: {error}")
    config = AsrConfig(compute="virtual" if virtual else "thread")

    def factory(source: Source, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        return _audio_only(AsrStage(model, config))(source, sink, metrics)

    return LoadedPipeline("asr", factory, "streaming ASR only (pipelines.assistant not installed)")


def load_pipeline(
    prefer: str = "auto", *, virtual: bool = False, config: Any = None
) -> LoadedPipeline:
    """Load the preferred pipeline: ``auto`` (the best installed), ``assistant``,
    ``captions`` (no language model) or ``echo`` (no model: an energy VAD); the old names
    ``best``, ``asr`` and ``vad`` mean ``auto``, ``captions`` and ``echo``.

    ``config``: an :class:`~streamkit.pipelines.assistant.AssistantConfig` choosing the models
    (from :func:`streamkit.commands.model_options.assistant_config`); ``None`` → the bundled
    ones. Raises ``RuntimeError`` when an explicitly requested kind is not available.
    """
    prefer = {"best": "auto", "asr": "captions", "vad": "echo"}.get(prefer, prefer)
    if prefer not in ("auto", "assistant", "captions", "echo"):
        raise ValueError(f"unknown pipeline {prefer!r}: use auto, assistant, captions or echo")
    if prefer in ("auto", "assistant"):
        loaded = _assistant(virtual, config)
        if loaded is not None:
            return loaded
        if prefer == "assistant":
            raise RuntimeError("streamkit.pipelines.assistant is not available in this install")
    if prefer == "captions":
        loaded = _assistant(virtual, config, lm=False)
        if loaded is not None:
            return loaded
    if prefer in ("auto", "captions"):
        loaded = _asr(virtual)
        if loaded is not None:
            return loaded
        if prefer == "captions":
            raise RuntimeError("ASR needs `pip install streamkit[asr]` (faster-whisper)")
    return LoadedPipeline("echo", _audio_only(EnergyVad()), "energy VAD only (no models)")


def speed_problem(kind: str, speed: float) -> str | None:
    """Why a replay at ``speed`` cannot run ``kind`` (None: it can).

    A faster replay compresses the timeline (pts and durations) but not the samples: the ASR
    hears 16 kHz audio whose timestamps say 64 kHz at ×4, re-anchors its sample clock on
    every chunk, and words of a new turn then fall "before" the previous turn's and are
    dropped as re-heard ("go forward 10 meters" → "forward 10 meters"). Pipelines without
    ASR (``echo``: the energy VAD) only count chunks, so any speed works for them. On a
    virtual-time loop a replay is as fast as the models compute anyway.
    """
    if speed == 1 or kind not in ("assistant", "captions", "asr"):
        return None
    return (f"--speed {speed:g} with the {kind} pipeline would change what the ASR hears; "
            "replay at --speed 1 (--virtual finishes as fast as the models compute)")
