"""One client session, protocol-neutral: commands in, events out.

A :class:`Session` serves one connection through one codec — :class:`~streamkit.transport
.codecs.v1.V1Codec` for ``/ws``, :class:`~streamkit.transport.codecs.realtime.RealtimeCodec`
for ``/v1/realtime`` — and never names a wire message: the codec decodes each frame into
commands (the media and control types of :mod:`streamkit.transport.protocol` and
:mod:`streamkit.transport.commands`), :meth:`Session.handle` carries each out on the pipeline
and returns its value (or the :class:`ProtocolError` refusing it), and every pipeline event
goes back through the codec into the outbox. The socket loop is
:class:`~streamkit.transport.connection.Connection`.

Ownership: a :class:`Session` owns one connection, one :class:`~streamkit.core.pipeline.Pipeline`
(built by a :data:`PipelineFactory` on the first media frame or ``input.commit``, or at once
when the codec asks), one bounded :class:`~streamkit.transport.outbox.Outbox` and one
``asyncio.TaskGroup`` holding the pipeline, the sender and the metrics ticker. When the client
leaves, the pipeline is aborted (an answer being generated is cancelled) and every task ends
before :meth:`Session.run` returns: nothing outlives the connection.

What may block: the receive loop waits while the pipeline is behind (audio is never
dropped) or while the outbox is full of meaning-bearing events; the sender waits on the
socket, at most ``limits.send_deadline_ms`` per event, after which the client is closed with
code 4003. Other sessions never wait on this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection

from streamkit.core.clock import NS_PER_MS, Clock, LoopClock
from streamkit.core.events import ErrorEvent, Event, ResponseDelta, ResponseDone
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline, StageFailed
from streamkit.core.stage import Stage, StageContext
from streamkit.transport.commands import ConfigureTurns, ImageIn
from streamkit.transport.connection import Connection
from streamkit.transport.controls import (
    apply_settings,
    call,
    conversation,
    initial_settings,
    set_turn_detection,
    set_turn_settings,
)
from streamkit.transport.limits import Limits
from streamkit.transport.outbox import Outbox, OutboxClosed, OutItem
from streamkit.transport.protocol import (
    AudioAppend,
    InputCommit,
    MetricsEvent,
    ProtocolError,
    ResponseCancel,
    SessionConfig,
    SessionUpdate,
    TurnSettings,
    VideoFrameIn,
)
from streamkit.transport.session_types import (
    Codec,
    DeviceSourceFactory,
    PipelineFactory,
    SessionControls,
)
from streamkit.transport.ws_source import WsSource

__all__ = [
    "ClientSink",
    "Codec",
    "DeviceSourceFactory",
    "PipelineFactory",
    "Session",
    "SessionControls",
]


log = logging.getLogger("streamkit.session")


class ClientSink:
    """The pipeline's sink stage: every event packet goes to the session's outbox, in order."""

    name = "client"

    def __init__(self, session: Session) -> None:
        self._session = session

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input("in"):
            if isinstance(item, Packet) and isinstance(item.payload, msgspec.Struct):
                try:
                    await self._session.send_event(item.payload, lineage=item.lineage)
                except OutboxClosed:
                    return


class Session:
    """One client connection (see the module docstring).

    Args:
        ws: the accepted connection.
        pipelines: pipeline name → factory.
        config: the initial settings (``session.update`` changes them).
        limits: sizes, rates and deadlines.
        device_source: opens the server's devices for ``source: "devices"`` (or None).
        codec: the protocol (None: ``/ws``'s :class:`~streamkit.transport.codecs.v1.V1Codec`).
    """

    def __init__(
        self,
        ws: ServerConnection,
        pipelines: Mapping[str, PipelineFactory],
        config: SessionConfig,
        limits: Limits,
        device_source: DeviceSourceFactory | None = None,
        clock: Clock | None = None,
        close_timeout_s: float = 2.0,
        codec: Codec | None = None,
    ) -> None:
        from streamkit.transport.codecs.v1 import V1Codec

        self.link = Connection(ws, self, close_timeout_s)
        self.close_timeout_s = close_timeout_s
        self.id = uuid.uuid4().hex[:12]
        self.pipelines = pipelines
        self.codec: Codec = codec if codec is not None else V1Codec(limits, lambda: self.config)
        self.config = self.codec.configure(config)
        self.limits = limits
        self.device_source = device_source
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.metrics = MetricsRegistry()
        self.outbox = Outbox(limits.outbox_capacity)
        self.source: WsSource | None = None
        self.pipeline: Pipeline | None = None
        self.controls: SessionControls | None = None
        self.turns: ConfigureTurns | None = None
        self.errors = 0
        self.consecutive_errors = 0
        self._group: asyncio.TaskGroup | None = None
        self._answering: set[str] = set()  # response ids with a delta queued and no done yet
        self._answered = asyncio.Event()  # set while _answering is empty
        self._answered.set()

    @property
    def ws(self) -> ServerConnection:
        return self.link.ws

    @property
    def close_code(self) -> int | None:
        return self.link.close_code

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client leaves; every task ends before return."""
        pipelines = sorted(self.pipelines)
        self._offer(self.codec.created(self.id, self.clock.now(), self.config, pipelines))
        ticker: asyncio.Task[None] | None = None
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self.link.sender(), name=f"send:{self.id}")
                ticker = group.create_task(self._metrics_loop(), name=f"metrics:{self.id}")
                try:
                    if self.codec.start_at_connect:
                        problem = await self._ensure_started()
                        if problem is not None:
                            self._offer(self.codec.refuse(problem))
                    await self.link.receive()
                finally:
                    ticker.cancel()
                    if self.source is not None:
                        self.source.end()
                    if self.pipeline is not None:
                        self.pipeline.abort()
                    self.outbox.close()
        finally:
            self._group = None

    # -- commands ------------------------------------------------------------------------

    async def handle(self, command: Any) -> Any:
        """Carry out one decoded command; returns its value or the ProtocolError refusing it.

        Values: ``SessionUpdate`` → the settings now in force; ``InputCommit`` → the ids of the
        utterances it closes; ``ResponseCancel`` → whether an answer was stopped; else None.
        """
        if isinstance(command, ProtocolError):
            return command
        if isinstance(command, AudioAppend | VideoFrameIn | ImageIn):
            return await self._media(command)
        if isinstance(command, SessionUpdate):
            problem = self._update(command)
            if problem is None and command.pipeline is not None:
                problem = await self._ensure_started()  # set up now, before the user speaks
            return problem if problem is not None else self.config
        if isinstance(command, ConfigureTurns):
            self.turns = command
            await self._apply_turns()
            return None
        if isinstance(command, ResponseCancel) and self.controls is None:
            return False
        problem = await self._ensure_started()
        if problem is not None:
            return problem
        assert self.controls is not None
        if isinstance(command, InputCommit):
            if self.source is not None:
                await self.source.flushed()
            return await call(self.controls.commit_input())
        if isinstance(command, ResponseCancel):
            return bool(await call(self.controls.cancel_response()))
        return await conversation(self.controls, command)

    async def _media(self, command: AudioAppend | VideoFrameIn | ImageIn) -> Any:
        if not isinstance(command, AudioAppend) and not self.config.video:
            return ProtocolError(
                "invalid_state", "send session.update with video: true before video frames"
            )
        source = await self._client_source()
        if isinstance(source, ProtocolError):
            return source
        if isinstance(command, AudioAppend):
            self.metrics.counter("ws.bytes_in").inc(len(command.samples) * 2)
            return await source.push_audio(command)
        if isinstance(command, VideoFrameIn):
            return source.push_video(command)
        return source.push_image(command.data, command.pts)

    def _update(self, msg: SessionUpdate) -> ProtocolError | None:
        changes = {f: getattr(msg, f) for f in msg.__struct_fields__ if getattr(msg, f) is not None}
        if self.pipeline is not None:
            fixed = {k for k in ("pipeline", "source", "video") if k in changes}
            if any(changes[k] != getattr(self.config, k) for k in fixed):
                return ProtocolError(
                    "invalid_state",
                    "pipeline, source and video can change only before media is sent",
                )
        if "pipeline" in changes and changes["pipeline"] not in self.pipelines:
            return ProtocolError(
                "unknown_pipeline",
                f"no pipeline {changes['pipeline']!r}; have {sorted(self.pipelines)}"[:200],
            )
        if changes.get("source") == "devices" and self.device_source is None:
            return ProtocolError("unsupported_source", "this server has no capture devices")
        if not 0 <= changes.get("metrics_interval_ms", 0) <= 3_600_000:
            return ProtocolError("invalid_message", "metrics_interval_ms must be 0 … 3600000")
        if "turn_detection" in changes and self.controls is not None:
            problem = set_turn_detection(self.controls, changes["turn_detection"])
            if problem is not None:
                return problem
        if "turn" in changes:
            changes["turn"] = self.config.turn.merged(changes["turn"])
            if self.controls is not None:
                problem = set_turn_settings(self.controls, changes["turn"])
                if problem is not None:
                    return problem
        self.config = msgspec.structs.replace(self.config, **changes)
        apply_settings(self.controls, self.config, changes)  # controls.SETTERS: which ones
        return None

    async def _apply_turns(self) -> None:
        """Hand the turn settings to the pipeline (before its first audio when possible)."""
        if self.turns is None or self.controls is None:
            return
        if self.turns.audio_out != self.config.output_audio:
            self.config = msgspec.structs.replace(self.config, output_audio=self.turns.audio_out)
            apply_settings(self.controls, self.config, ("output_audio",))
        configure = getattr(self.controls, "configure_turns", None)
        if configure is not None:
            await call(configure(self.turns))

    async def _client_source(self) -> WsSource | ProtocolError:
        if self.config.source != "client":
            return ProtocolError("invalid_state", "this session's source is the server's devices")
        problem = await self._ensure_started()
        if problem is not None:
            return problem
        assert self.source is not None
        return self.source

    async def _ensure_started(self) -> ProtocolError | None:
        if self.pipeline is not None:
            return None
        factory = self.pipelines.get(self.config.pipeline)
        if factory is None:
            return ProtocolError("unknown_pipeline", f"no pipeline {self.config.pipeline!r}")
        source: Stage
        if self.config.source == "devices":
            assert self.device_source is not None
            source = self.device_source(self.metrics)
        else:
            self.source = WsSource(self.metrics, self.clock, video=self.config.video)
            source = self.source
        try:
            self.pipeline, self.controls = factory(source, ClientSink(self), self.metrics)
            apply_settings(self.controls, self.config, initial_settings(self.config))
        except Exception as error:  # a factory bug must not kill the server
            self.source = None
            return ProtocolError("pipeline_error", f"could not build the pipeline: {error!r}"[:300])
        if self.config.turn_detection != "auto":
            problem = set_turn_detection(self.controls, self.config.turn_detection)
            if problem is not None:
                self._offer(self.codec.refuse(problem))
        if self.config.turn != TurnSettings():
            problem = set_turn_settings(self.controls, self.config.turn)
            if problem is not None:
                self._offer(self.codec.refuse(problem))
        assert self._group is not None
        self._group.create_task(self._run_pipeline(self.pipeline), name=f"pipeline:{self.id}")
        self.codec.started(self)
        await self._apply_turns()
        return None

    async def _run_pipeline(self, pipeline: Pipeline) -> None:
        try:
            await pipeline.run()
        except StageFailed as error:
            if self.source is not None:
                self.source.end()  # a receive loop waiting to push audio must not hang
            self._offer(self.codec.encode(ErrorEvent("pipeline_error", str(error)[:300])))
            await self.link.close_after_flush(1011, "pipeline failed")
        finally:
            if self.source is not None:
                self.source.end()

    async def shutdown(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """The server is going: cut the answer in progress short, so the client gets its
        ``response.done`` (``cancelled: true``), then close with ``code`` once the queued
        events went out. Waits at most ``close_timeout_s`` for the ``response.done``."""
        if self.close_code is not None:
            return
        if self.controls is not None:
            await call(self.controls.cancel_response())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.close_timeout_s):
                    await self._answered.wait()
        await self.link.close_after_flush(code, reason)

    # -- events out ----------------------------------------------------------------------

    def _offer(self, items: list[OutItem]) -> None:
        for item in items:
            if not self.outbox.closed:
                self.outbox.offer(item)

    async def send_event(self, event: Event | msgspec.Struct, lineage: str | None = None) -> None:
        """Queue a pipeline event for the client through the codec (waits while the outbox
        is full of finals/tokens)."""
        for item in self.codec.encode(event, lineage):
            if item.lineage != lineage:
                item = replace(item, lineage=lineage)
            await self.outbox.put(item)
        if isinstance(event, ResponseDelta):
            self._answering.add(event.response_id)
            self._answered.clear()
        elif isinstance(event, ResponseDone):
            self._answering.discard(event.response_id)
            if not self._answering:
                self._answered.set()

    async def _metrics_loop(self) -> None:
        while True:
            interval = self.config.metrics_interval_ms
            await self.clock.sleep((interval or 1000) * NS_PER_MS)
            if interval and not self.outbox.closed:
                self._offer(self.codec.encode(self.metrics_event()))

    def transport_counters(self) -> dict[str, int]:
        core = self.outbox.core
        counters = {n: c.value for n, c in self.metrics.counters.items() if n.startswith("ws.")}
        counters.update(
            {
                "ws.outbox.dropped": core.dropped,
                "ws.outbox.coalesced": core.coalesced,
                "ws.outbox.peak": core.peak,
                "ws.outbox.sent": core.sent,
                "ws.video.dropped": self.source.video_dropped if self.source else 0,
            }
        )
        return counters

    def metrics_event(self) -> MetricsEvent:
        snapshot = self.metrics.snapshot()
        lineage = snapshot.pop("lineage")
        return MetricsEvent(
            t=self.clock.now(),
            transport=self.transport_counters(),
            snapshot=snapshot,
            lineage=lineage,
        )
