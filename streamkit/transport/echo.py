"""``echo``: a small real pipeline for the transport (tests, load checks, protocol demos).

It needs no model: it counts the audio the client sends, reports it as partial transcripts
("heard 1.20 s"), and on ``input.commit`` emits a final (with one word spanning the audio
received since the last commit, on the shared clock) then streams an answer of ``tokens``
deltas paced ``token_ns`` apart on the shared clock, which ``response.cancel`` (or the client
leaving) cancels. Video frames become ``vision.observation`` events (size and brightness).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from streamkit.core.clock import NS_PER_MS, Nanos
from streamkit.core.edge import Edge, Policy
from streamkit.core.events import (
    Observation,
    ResponseDelta,
    ResponseDone,
    TranscriptFinal,
    TranscriptPartial,
    Word,
)
from streamkit.core.media import AudioChunk, VideoFrame
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import OutPort, Source, Stage, StageContext

__all__ = ["EchoControls", "EchoStage", "echo_factory"]


class EchoControls:
    """``commit_input`` / ``cancel_response`` for the echo pipeline (never block)."""

    def __init__(self) -> None:
        self.commands: Edge[str] = Edge("echo.commands", 16, Policy.DROP_NEWEST)

    def _send(self, command: str) -> None:
        if not self.commands.closed:
            self.commands.put_nowait(Packet("cmd", 0, 0, 0, command))

    def commit_input(self) -> None:
        self._send("commit")

    def cancel_response(self) -> None:
        self._send("cancel")


class EchoStage:
    """Counts audio, answers commits (see the module docstring)."""

    name = "echo"

    def __init__(
        self,
        controls: EchoControls,
        tokens: int = 20,
        token_ns: Nanos = 20 * NS_PER_MS,
        pad: int = 0,
    ) -> None:
        self.controls = controls
        self.tokens = tokens
        self.token_ns = token_ns
        self.pad = "." * pad
        self.samples = 0
        self.chunks = 0
        self._utt = 0
        self._utt_start: Nanos | None = None
        self._utt_end: Nanos = 0
        self._answer: asyncio.Task[None] | None = None
        self.cancelled = 0

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output("out")
        async with asyncio.TaskGroup() as group:
            group.create_task(self._audio(ctx, out))
            if "video" in ctx.inputs:
                group.create_task(self._video(ctx, out))
            await self._commands(ctx, out, group)

    async def _audio(self, ctx: StageContext, out: OutPort) -> None:
        async for item in ctx.input("audio"):
            if not isinstance(item, Packet) or not isinstance(item.payload, AudioChunk):
                continue
            self.samples += len(item.payload.samples)
            self.chunks += 1
            if self._utt_start is None:
                self._utt_start = item.pts
            self._utt_end = item.end
            if self.chunks % 5 == 0:
                uid = f"u{self._utt}"
                heard = (self._utt_end - self._utt_start) / 1e9
                partial = TranscriptPartial(uid, f"heard {heard:.2f} s", [], committed="")
                await out.put(item.derive(partial, stream="transcript").with_lineage(uid))
        self.controls.commands.close()

    async def _video(self, ctx: StageContext, out: OutPort) -> None:
        async for item in ctx.input("video"):
            if isinstance(item, Packet) and isinstance(item.payload, VideoFrame):
                frame = item.payload
                obs = Observation(
                    pts=item.pts,
                    detections=[],
                    motion=0.0,
                    brightness=float(np.mean(frame.image)) / 255.0,
                    colours=[],
                    width=frame.width,
                    height=frame.height,
                    summary=f"{frame.width}x{frame.height} frame",
                )
                await out.put(item.derive(obs, stream="vision"))

    async def _commands(self, ctx: StageContext, out: OutPort, group: asyncio.TaskGroup) -> None:
        async for item in self.controls.commands:
            if not isinstance(item, Packet):
                continue
            if item.payload == "cancel":
                self._cancel()
                continue
            audio = ctx.inputs["audio"]
            while len(audio) and not audio.closed:  # audio received before the commit
                await ctx.clock.sleep(NS_PER_MS)
            uid = f"u{self._utt}"
            self._utt += 1
            start = self._utt_start if self._utt_start is not None else ctx.clock.now()
            end = max(self._utt_end, start)
            text = f"heard {(end - start) / 1e9:.2f} s"
            final = TranscriptFinal(uid, text, [Word(text, start, end, 1.0)], start, end)
            self._utt_start = None
            await out.put(Packet("transcript", self._utt, end, 0, final, lineage=uid))
            self._cancel()
            self._answer = group.create_task(self._respond(ctx, out, uid))
        self._cancel()

    def _cancel(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
            self.cancelled += 1

    async def _respond(self, ctx: StageContext, out: OutPort, uid: str) -> None:
        rid = f"r-{uid}"
        text = ""
        try:
            for index in range(self.tokens):
                await ctx.clock.sleep(self.token_ns)
                piece = f"t{index}{self.pad} "
                text += piece
                delta = ResponseDelta(rid, uid, piece, index)
                await out.put(Packet("response", index, ctx.clock.now(), 0, delta, lineage=uid))
        except asyncio.CancelledError:
            done = ResponseDone(rid, uid, text, cancelled=True)
            out.put_nowait(Packet("response", self.tokens, ctx.clock.now(), 0, done, lineage=uid))
            raise
        done = ResponseDone(rid, uid, text, completion_tokens=self.tokens)
        await out.put(Packet("response", self.tokens, ctx.clock.now(), 0, done, lineage=uid))


def echo_factory(
    tokens: int = 20,
    token_ns: Nanos = 20 * NS_PER_MS,
    stages: list[EchoStage] | None = None,
    pad: int = 0,
) -> Any:
    """A :data:`~streamkit.transport.session.PipelineFactory` for the echo pipeline.

    ``stages``, when given, collects each session's :class:`EchoStage` (for tests); ``pad``
    makes every answer token that many bytes longer (load tests).
    """

    def build(
        source: Source, sink: Stage, metrics: MetricsRegistry
    ) -> tuple[Pipeline, EchoControls]:
        pipe = Pipeline(metrics=metrics)
        controls = EchoControls()
        stage = EchoStage(controls, tokens, token_ns, pad)
        if stages is not None:
            stages.append(stage)
        audio = pipe.edge("audio", 64, Policy.BLOCK)
        events = pipe.edge("events", 64, Policy.BLOCK)
        outputs = {"audio": audio}
        inputs = {"audio": audio}
        if "video" in source.outputs:
            video = pipe.edge("video", 1, Policy.LATEST)
            outputs["video"] = video
            inputs["video"] = video
        pipe.add(source, outputs=outputs)
        pipe.add(stage, inputs=inputs, outputs={"out": events})
        pipe.add(sink, inputs={"in": events})
        return pipe, controls

    return build
