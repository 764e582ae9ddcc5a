"""The echo gate stage: VAD/transcript events pass unless they are the echo of our own voice.

Inputs: ``"in"`` — the ASR's events (``SpeechStarted``, partials, finals, ``SpeechStopped``…,
each with an ``utterance_id``); ``"mic"`` — the microphone audio the ASR hears
(``Packet[AudioChunk]``); ``"reference"`` — what the voice plays (``Packet[ResponseAudio]``;
other packets ignored). Output ``"out"``: the ASR's events, in order, except those of an
utterance :class:`~streamkit.tts.echo.EchoGateCore` judged to be echo. An utterance that starts
while the voice plays is held until it is decided (at most ``decide_ms`` of mic audio); a
promoted one (the user spoke up inside it) gets its ``SpeechStarted`` at the moment of the
promotion. A held utterance is judged when it starts and after every mic chunk. Counters
``echo.held``, ``echo.dropped``, ``echo.passed``, ``echo.promoted``.

One writer task emits everything (released held events and live ones keep their order).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from streamkit.core.events import ResponseAudio, SpeechStarted, SpeechStopped, TranscriptFinal
from streamkit.core.media import AudioChunk
from streamkit.core.packet import EndOfStream, Packet
from streamkit.core.stage import InPort, StageContext
from streamkit.tts.backend import pcm16_samples
from streamkit.tts.echo import EchoGateConfig, EchoGateCore

__all__ = ["EchoGate"]


class EchoGate:
    """The echo gate (see the module docstring)."""

    def __init__(self, config: EchoGateConfig | None = None, name: str = "echo") -> None:
        self.name = name
        self.core = EchoGateCore(config or EchoGateConfig())
        self._held: dict[str, list[Packet[Any]]] = {}
        self._echo: set[str] = set()
        self._out: deque[Packet[Any] | EndOfStream] = deque()
        self._ready = asyncio.Event()
        self._ctx: StageContext | None = None

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        self._ctx = ctx
        for name in ("held", "dropped", "passed", "promoted"):
            ctx.metrics.counter(f"echo.{name}")
        async with asyncio.TaskGroup() as group:
            writer = group.create_task(self._write(ctx))
            helpers = [group.create_task(self._read_mic(ctx.input("mic")))]
            if "reference" in ctx.inputs:
                helpers.append(group.create_task(self._read_reference(ctx.input("reference"))))
            await self._read_events(ctx.input("in"))
            for task in helpers:
                task.cancel()
            await writer

    def _emit(self, item: Packet[Any] | EndOfStream) -> None:
        self._out.append(item)
        self._ready.set()

    async def _write(self, ctx: StageContext) -> None:
        out = ctx.output("out")
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._out:
                item = self._out.popleft()
                if isinstance(item, EndOfStream):
                    return
                await out.put(item)

    def _count(self, name: str) -> None:
        if self._ctx is not None:
            self._ctx.metrics.counter(f"echo.{name}").inc()

    async def _read_events(self, port: InPort) -> None:
        async for item in port:
            if not isinstance(item, Packet):
                continue
            event = item.payload
            uid = getattr(event, "utterance_id", None)
            if uid is None:
                self._emit(item)
                continue
            if isinstance(event, SpeechStarted) and uid not in self._held:
                if self.core.speech_started(uid, event.t) == "user":
                    self._count("passed")
                    self._emit(item)
                else:
                    self._count("held")
                    self._held[uid] = [item]
                    self._decide(uid, event.t)  # the mic may already hold the evidence
            elif uid in self._held:
                self._held[uid].append(item)
                if isinstance(event, SpeechStopped | TranscriptFinal):
                    self._decide(uid, item.pts, final=isinstance(event, TranscriptFinal)
                                 and event.is_last)
            elif uid not in self._echo:
                self._emit(item)
            if isinstance(event, SpeechStopped):
                self.core.ended(uid)
        self._emit(EndOfStream())

    async def _read_mic(self, port: InPort) -> None:
        async for item in port:
            if isinstance(item, Packet) and isinstance(item.payload, AudioChunk):
                chunk = item.payload
                self.core.mic(item.pts, chunk.samples, chunk.sample_rate)
                for uid in list(self._held):
                    self._decide(uid, item.end)

    async def _read_reference(self, port: InPort) -> None:
        async for item in port:
            if isinstance(item, Packet) and isinstance(item.payload, ResponseAudio):
                audio = item.payload
                self.core.reference(audio.pts, pcm16_samples(audio.pcm), audio.sample_rate)

    def _decide(self, uid: str, now: int, final: bool = False) -> None:
        verdict = self.core.poll(uid, now)
        held = self._held.get(uid, [])
        if verdict == "user":
            if uid in self._echo:  # promoted: the user spoke up inside an echo utterance
                self._echo.discard(uid)
                self._count("promoted")
                self._emit(held[0].derive(SpeechStarted(uid, now)))
                held = [p for p in held if not isinstance(p.payload, SpeechStarted)]
            else:
                self._count("passed")
            for packet in held:
                self._emit(packet)
            self._held.pop(uid, None)
            self.core.forget(uid)
        elif verdict == "echo" and uid not in self._echo:
            self._count("dropped")
            self._echo.add(uid)
            self._held[uid] = held[:1]  # keep watching it (promotion)
        elif verdict == "echo":
            self._held[uid] = held[:1]
        if final and uid in self._held:  # the utterance is over: its verdict stands
            self._held.pop(uid, None)
            self.core.forget(uid)
