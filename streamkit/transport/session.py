"""One WebSocket session: its pipeline, its outbox, its receive and send loops.

Ownership: a :class:`Session` owns one connection, one :class:`~streamkit.pipeline.Pipeline`
(built by a :data:`PipelineFactory` on the first media frame or ``input.commit``), one
bounded :class:`~streamkit.transport.outbox.Outbox` and one ``asyncio.TaskGroup`` holding the
pipeline, the sender and the metrics ticker. When the client leaves, the pipeline is aborted
(an answer being generated is cancelled) and every task ends before :meth:`Session.run`
returns: nothing outlives the connection.

What may block: the receive loop waits while the pipeline is behind (audio is never
dropped) or while the outbox is full of meaning-bearing events; the sender waits on the
socket, at most ``limits.send_deadline_ms`` per event, after which the client is closed with
code 4003. Other sessions never wait on this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from streamkit.clock import NS_PER_MS, Clock, LoopClock
from streamkit.events import (
    ErrorEvent,
    Event,
    Observation,
    ResponseAudio,
    ResponseAudioDone,
    ResponseDelta,
    ResponseDone,
    TranscriptPartial,
)
from streamkit.metrics import MetricsRegistry
from streamkit.packet import Packet
from streamkit.pipeline import Pipeline, StageFailed
from streamkit.stage import Stage, StageContext
from streamkit.transport.outbox import Outbox, OutboxClosed, OutItem
from streamkit.transport.protocol import (
    PROTOCOL,
    AudioAppend,
    Decoded,
    InputCommit,
    Limits,
    LimitsInfo,
    MetricsEvent,
    ProtocolError,
    ServerEvent,
    SessionConfig,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    VideoFrameIn,
    decode_binary,
    decode_text,
    encode_event,
    encode_output_audio,
    is_droppable,
)
from streamkit.transport.ratelimit import RateLimiter
from streamkit.transport.ws_source import WsSource

__all__ = [
    "ClientSink",
    "DeviceSourceFactory",
    "PipelineFactory",
    "Session",
    "SessionControls",
]


log = logging.getLogger("streamkit.session")


class SessionControls(Protocol):
    """What a session may ask of its pipeline (methods may be sync or async)."""

    def commit_input(self) -> Any: ...

    def cancel_response(self) -> Any: ...


PipelineFactory = Callable[[Stage, Stage, MetricsRegistry], tuple[Pipeline, SessionControls]]
"""``(source, sink, metrics) -> (pipeline, controls)``: builds one session's pipeline.

The source stage has output ports ``"audio"`` (and ``"video"`` if listed in its ``outputs``);
the sink has input port ``"in"`` taking ``Packet[Event]``. Models are loaded once by whoever
makes the factory and shared by every session.
"""

DeviceSourceFactory = Callable[[MetricsRegistry], Stage]
"""Opens the server's own capture devices as a source stage (``source: "devices"``)."""


def _set_turn_detection(controls: SessionControls, detection: str) -> ProtocolError | None:
    """Apply ``session.update`` ``turn_detection`` to a pipeline that has turn-taking (others
    ignore it); a policy the server cannot run (no model) is an ``invalid_message`` error."""
    setter = getattr(controls, "set_turn_detection", None)
    if setter is None:
        return None
    try:
        setter(detection)
    except (RuntimeError, ValueError) as error:
        return ProtocolError("invalid_message", str(error)[:300])
    return None


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


def _event_type(event: msgspec.Struct) -> str:
    tag = type(event).__struct_config__.tag
    return tag if isinstance(tag, str) else type(event).__name__


class Session:
    """One client connection (see the module docstring).

    Args:
        ws: the accepted connection.
        pipelines: pipeline name → factory.
        config: the initial settings (``session.update`` changes them).
        limits: sizes, rates and deadlines.
        device_source: opens the server's devices for ``source: "devices"`` (or None).
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
    ) -> None:
        self.ws = ws
        self.close_timeout_s = close_timeout_s
        self.id = uuid.uuid4().hex[:12]
        self.pipelines = pipelines
        self.config = config
        self.limits = limits
        self.device_source = device_source
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.metrics = MetricsRegistry()
        self.outbox = Outbox(limits.outbox_capacity)
        self.source: WsSource | None = None
        self.pipeline: Pipeline | None = None
        self.controls: SessionControls | None = None
        self.errors = 0
        self.close_code: int | None = None
        self._consecutive_errors = 0
        self._group: asyncio.TaskGroup | None = None
        self._answering: set[str] = set()  # response ids with a delta queued and no done yet
        self._answered = asyncio.Event()  # set while _answering is empty
        self._answered.set()

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client leaves; every task ends before return."""
        self._offer(self._created())
        ticker: asyncio.Task[None] | None = None
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._sender(), name=f"send:{self.id}")
                ticker = group.create_task(self._metrics_loop(), name=f"metrics:{self.id}")
                try:
                    await self._receive()
                finally:
                    ticker.cancel()
                    if self.source is not None:
                        self.source.end()
                    if self.pipeline is not None:
                        self.pipeline.abort()
                    self.outbox.close()
        finally:
            self._group = None

    def _created(self) -> SessionCreated:
        lim = self.limits
        return SessionCreated(
            session_id=self.id,
            protocol=PROTOCOL,
            server_time_ns=self.clock.now(),
            config=self.config,
            pipelines=sorted(self.pipelines),
            limits=LimitsInfo(
                max_text_bytes=lim.max_text_bytes,
                max_audio_bytes=lim.max_audio_bytes,
                max_video_bytes=lim.max_video_bytes,
                max_frame_bytes=lim.max_frame_bytes,
                messages_per_s=lim.messages_per_s,
                bytes_per_s=lim.bytes_per_s,
                send_deadline_ms=lim.send_deadline_ms,
            ),
        )

    # -- receiving -----------------------------------------------------------------------

    async def _receive(self) -> None:
        limiter = RateLimiter(self.limits, self.clock.now())
        audio_pace = RateLimiter(self.limits, self.clock.now())  # audio waits, never dropped
        try:
            async for message in self.ws:
                decoded: Decoded | None = None
                if not isinstance(message, str):
                    decoded = decode_binary(bytes(message), self.limits)
                if isinstance(decoded, AudioAppend):
                    while wait := audio_pace.delay(self.clock.now(), len(message)):
                        self.metrics.counter("ws.audio.paced_ns").inc(wait)
                        await self.clock.sleep(wait)  # not reading: TCP backpressure
                elif not limiter.allow(self.clock.now(), len(message)):
                    await self._error(
                        ProtocolError("rate_limited", "message rate or byte rate exceeded")
                    )
                    continue
                if decoded is None:
                    decoded = decode_text(message, self.limits)
                problem = await self._dispatch(decoded)
                if problem is not None:
                    await self._error(problem)
                else:
                    self._consecutive_errors = 0
                if self.close_code is not None:
                    return
        except (ConnectionClosed, OutboxClosed):
            return

    async def _dispatch(self, msg: Decoded) -> ProtocolError | None:
        if isinstance(msg, ProtocolError):
            return msg
        if isinstance(msg, AudioAppend):
            source = await self._client_source()
            if isinstance(source, ProtocolError):
                return source
            self.metrics.counter("ws.bytes_in").inc(len(msg.samples) * 2)
            return await source.push_audio(msg)
        if isinstance(msg, VideoFrameIn):
            if not self.config.video:
                return ProtocolError(
                    "invalid_state", "send session.update with video: true before video frames"
                )
            source = await self._client_source()
            if isinstance(source, ProtocolError):
                return source
            return source.push_video(msg)
        if isinstance(msg, SessionUpdate):
            problem = self._update(msg)
            if problem is None and msg.pipeline is not None:
                return await self._ensure_started()  # set up now, before the user speaks
            return problem
        problem = await self._ensure_started()
        if problem is not None:
            return problem
        assert self.controls is not None
        if isinstance(msg, InputCommit):
            if self.source is not None:
                await self.source.flushed()
            result = self.controls.commit_input()
        else:
            result = self.controls.cancel_response()
        if inspect.isawaitable(result):
            await result
        return None

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
            problem = _set_turn_detection(self.controls, changes["turn_detection"])
            if problem is not None:
                return problem
        self.config = msgspec.structs.replace(self.config, **changes)
        if "output_audio" in changes:
            self._apply_output_audio()
        self._offer(SessionUpdated(config=self.config))
        return None

    def _apply_output_audio(self) -> None:
        """Tell the pipeline whether to speak (pipelines without a voice ignore it)."""
        setter = getattr(self.controls, "set_output_audio", None)
        if setter is not None:
            setter(self.config.output_audio)

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
            self._apply_output_audio()
        except Exception as error:  # a factory bug must not kill the server
            self.source = None
            return ProtocolError("pipeline_error", f"could not build the pipeline: {error!r}"[:300])
        if self.config.turn_detection != "auto":
            problem = _set_turn_detection(self.controls, self.config.turn_detection)
            if problem is not None:
                self._offer(ErrorEvent(problem.code, problem.message))
        assert self._group is not None
        self._group.create_task(self._run_pipeline(self.pipeline), name=f"pipeline:{self.id}")
        return None

    async def _run_pipeline(self, pipeline: Pipeline) -> None:
        try:
            await pipeline.run()
        except StageFailed as error:
            if self.source is not None:
                self.source.end()  # a receive loop waiting to push audio must not hang
            self._offer(ErrorEvent("pipeline_error", str(error)[:300]))
            await self._close_after_flush(1011, "pipeline failed")
        finally:
            if self.source is not None:
                self.source.end()

    async def _error(self, problem: ProtocolError) -> None:
        self.errors += 1
        self._consecutive_errors += 1
        self.metrics.counter("ws.errors").inc()
        self.metrics.counter(f"ws.errors.{problem.code}").inc()  # by code: /metrics
        log.info("session %s: error %s: %s", self.id, problem.code, problem.message,
                 extra={"event": "error", "session": self.id, "code": problem.code})
        await self.send_event(problem.event())
        limit = self.limits.max_consecutive_errors
        if limit and self._consecutive_errors >= limit:
            await self._close_after_flush(4008, "too many protocol errors")

    async def shutdown(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """The server is going: cut the answer in progress short, so the client gets its
        ``response.done`` (``cancelled: true``), then close with ``code`` once the queued
        events went out. Waits at most ``close_timeout_s`` for the ``response.done``."""
        if self.close_code is not None:
            return
        if self.controls is not None:
            result = self.controls.cancel_response()
            if inspect.isawaitable(result):
                await result
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.close_timeout_s):
                    await self._answered.wait()
        await self._close_after_flush(code, reason)

    async def _close_after_flush(self, code: int, reason: str) -> None:
        """Close with ``code`` once queued events went out (bounded by the send deadline)."""
        self.close_code = code
        deadline = self.clock.now() + self.limits.send_deadline_ms * NS_PER_MS
        while len(self.outbox.core) and self.clock.now() < deadline:
            await self.clock.sleep(5 * NS_PER_MS)
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        """Close with ``code``; a client that reads nothing is cut off after the timeout.

        The close frame queues behind unsent data: a client that resumes reading within
        ``close_timeout_s`` sees ``code``, one that never does loses the TCP connection.
        """
        try:
            async with asyncio.timeout(self.close_timeout_s):
                await self.ws.close(code, reason)
        except TimeoutError:
            self.ws.transport.abort()

    # -- sending -------------------------------------------------------------------------

    def _item(self, event: msgspec.Struct, lineage: str | None) -> OutItem | None:
        kind = _event_type(event)
        if isinstance(event, ResponseAudio | ResponseAudioDone):
            if not self.config.output_audio:
                return None
            if isinstance(event, ResponseAudio):  # a binary frame, never dropped
                return OutItem(kind, encode_output_audio(event), False, None, lineage, True)
        if isinstance(event, TranscriptPartial):
            if not self.config.partials:
                return None
            key: str | None = f"partial:{event.utterance_id}"
        elif isinstance(event, Observation):
            key = "observation"
            if not self.config.keyframes and event.keyframe_jpeg is not None:
                event = msgspec.structs.replace(event, keyframe_jpeg=None)
        else:
            key = kind if kind == "metrics" else None
        data = encode_event(event)  # type: ignore[arg-type]
        return OutItem(kind, data, is_droppable(kind), key, lineage)

    def _offer(self, event: ServerEvent) -> None:
        item = self._item(event, None)
        if item is not None and not self.outbox.closed:
            self.outbox.offer(item)

    async def send_event(self, event: Event | msgspec.Struct, lineage: str | None = None) -> None:
        """Queue an event for the client (waits while the outbox is full of finals/tokens)."""
        item = self._item(event, lineage)
        if item is not None:
            await self.outbox.put(item)
        if isinstance(event, ResponseDelta):
            self._answering.add(event.response_id)
            self._answered.clear()
        elif isinstance(event, ResponseDone):
            self._answering.discard(event.response_id)
            if not self._answering:
                self._answered.set()

    async def _sender(self) -> None:
        deadline = self.limits.send_deadline_ms / 1000
        while (item := await self.outbox.get()) is not None:
            try:
                async with asyncio.timeout(deadline):
                    await self.ws.send(item.data, text=not item.binary)
            except TimeoutError:
                self.metrics.counter("ws.slow_closes").inc()
                self.close_code = 4003
                self.outbox.close()
                await self._close(4003, "slow consumer")
                return
            except ConnectionClosed:
                self.outbox.close()
                return
            if item.lineage is not None:
                self.metrics.lineage.mark(item.lineage, f"sent.{item.type}", self.clock.now())

    async def _metrics_loop(self) -> None:
        while True:
            interval = self.config.metrics_interval_ms
            await self.clock.sleep((interval or 1000) * NS_PER_MS)
            if interval and not self.outbox.closed:
                self._offer(self.metrics_event())

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
