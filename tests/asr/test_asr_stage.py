"""The async ASR stage on virtual time with a stand-in model (fast; real VAD, fake decoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from streamkit.asr.core import AsrConfig
from streamkit.asr.run import ArraySource, CollectSink
from streamkit.asr.stage import AsrStage
from streamkit.asr.whisper import DecodedWord, DecodeOptions, DecodeResult
from streamkit.core.clock import NS_PER_MS, Clock
from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.core.edge import Policy
from streamkit.core.events import SpeechStarted, TranscriptFinal
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import StageContext
from streamkit.sources.media_io import load_audio


class EnergyModel:
    """Stands in for WhisperModelShared: one word per loud stretch of the window."""

    def __init__(self) -> None:
        self.calls = 0
        self._slot: ModelSlot | None = None

    def slot(self, clock: Clock, mode: ComputeMode = "thread", metrics: Any = None) -> ModelSlot:
        if self._slot is None:
            self._slot = ModelSlot("whisper", clock, mode, metrics)
        return self._slot

    def decode_window(
        self, audio: npt.NDArray[np.float32], prompt: str = "", options: Any = None
    ) -> DecodeResult:
        self.calls += 1
        frames = np.abs(audio[: len(audio) // 1600 * 1600]).reshape(-1, 1600).max(axis=1)
        loud = frames > 0.05
        words: list[DecodedWord] = []
        start: int | None = None
        for i, on in enumerate([*loud.tolist(), False]):
            if on and start is None:
                start = i
            elif not on and start is not None:
                words.append(DecodedWord(f"w{start}", start / 10, i / 10, 0.9))
                start = None
        return DecodeResult(words, " ".join(w.text for w in words), -0.1, 0.0, 1.0, 0.0)


class Committer:
    """Calls ``asr.commit()`` at ``at_ns`` after the pipeline started."""

    name = "committer"

    def __init__(self, asr: AsrStage, at_ns: int) -> None:
        self.asr = asr
        self.at_ns = at_ns

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        await ctx.clock.sleep_until(ctx.base_time + self.at_ns)
        self.asr.commit()


@pytest.mark.looptime
async def test_commit_finalises_now_and_lag_is_reported(data_dir: Path) -> None:
    audio = load_audio(data_dir / "speech/utterances/jfk/jfk.wav")[: 16_000 * 4]
    model = EnergyModel()
    config = AsrConfig(compute="virtual", charge_ns=150 * NS_PER_MS, decode=DecodeOptions())
    asr = AsrStage(model, config)  # type: ignore[arg-type]
    sink = CollectSink()
    metrics = MetricsRegistry()
    pipeline = Pipeline(metrics=metrics)
    a = pipeline.edge("audio", 64, Policy.BLOCK)
    e = pipeline.edge("events", 64, Policy.BLOCK)
    pipeline.add(ArraySource(audio), outputs={"audio": a})
    pipeline.add(asr, inputs={"in": a}, outputs={"out": e})
    pipeline.add(sink, inputs={"in": e})
    pipeline.add(Committer(asr, 1_500 * NS_PER_MS))
    await pipeline.run()
    base = pipeline.state.base_time or 0
    events = [(t - base, p.payload) for t, p in sink.received]
    lasts = [(t, ev) for t, ev in events if isinstance(ev, TranscriptFinal) and ev.is_last]
    # the forced final comes right after the commit (one decode, 150 ms charged), long
    # before the speech of the first utterance would have ended by itself
    assert lasts[0][0] <= 1_500 * NS_PER_MS + 200 * NS_PER_MS
    assert lasts[0][1].utterance_id == "asr-1"
    started = [ev.utterance_id for _, ev in events if isinstance(ev, SpeechStarted)]
    assert started[:2] == ["asr-1", "asr-2"]  # speech after the commit opens a new utterance
    assert model.calls > 2
    assert "asr.lag_s" in metrics.gauges
    assert metrics.lineage.get("asr-1").keys() >= {"asr.vad_start", "asr.final"}


class BurstThenCommit:
    """Puts all of ``audio`` on the edge at once (a client's upload that the ASR has not read
    yet), commits right away, then keeps the stream open for ``hold_ns``."""

    name = "burst"
    outputs: tuple[str, ...] = ("audio",)

    def __init__(self, audio: npt.NDArray[np.float32], asr: AsrStage, hold_ns: int) -> None:
        self.audio, self.asr, self.hold_ns = audio, asr, hold_ns

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        from streamkit.core.media import AudioChunk
        from streamkit.core.packet import Packet

        out = ctx.output("audio")
        for seq, begin in enumerate(range(0, len(self.audio), 320)):
            pts = ctx.base_time + begin * 62_500
            await out.put(Packet("audio", seq, pts, 20 * NS_PER_MS,
                                 AudioChunk(self.audio[begin : begin + 320])))
        self.asr.commit()
        await ctx.clock.sleep(self.hold_ns)


@pytest.mark.looptime
async def test_a_commit_closes_the_audio_queued_before_it(data_dir: Path) -> None:
    """Issue 12: a commit applied before the queued audio was read closed nothing; the last
    words then opened an utterance no later audio would end (the last turn went unanswered)."""
    audio = load_audio(data_dir / "speech/utterances/jfk/jfk.wav")[: 16_000 * 4]  # mid-speech
    model = EnergyModel()
    asr = AsrStage(model, AsrConfig(compute="virtual", charge_ns=50 * NS_PER_MS))  # type: ignore[arg-type]
    sink = CollectSink()
    pipeline = Pipeline(metrics=MetricsRegistry())
    a = pipeline.edge("audio", 256, Policy.BLOCK)
    e = pipeline.edge("events", 256, Policy.BLOCK)
    hold = 60_000 * NS_PER_MS
    pipeline.add(BurstThenCommit(audio, asr, hold), outputs={"audio": a})
    pipeline.add(asr, inputs={"in": a}, outputs={"out": e})
    pipeline.add(sink, inputs={"in": e})
    await pipeline.run()
    base = pipeline.state.base_time or 0
    events = [(t - base, p.payload) for t, p in sink.received]
    last = [ev.utterance_id for _, ev in events if isinstance(ev, SpeechStarted)][-1]
    final_at = [t for t, ev in events
                if isinstance(ev, TranscriptFinal) and ev.is_last and ev.utterance_id == last]
    assert final_at, "the last utterance was never finalised"
    assert final_at[0] < hold // 2  # by the commit, not by the end of the stream
