"""A ``/v1/realtime`` connection: the session model of ``/ws`` driven by the Realtime codec.

:class:`RealtimeSession` is a :class:`~streamkit.transport.session.Session` (one pipeline,
one outbox, one task group: the same ownership and blocking rules) whose wire side is
:class:`~streamkit.transport.codecs.realtime.RealtimeCodec`: every frame is decoded into
commands, :meth:`RealtimeSession.handle` carries each out on the pipeline and the codec turns
the outcome and every pipeline event into Realtime events. :meth:`handle` is
protocol-neutral (commands in, values out); the loop around it is the thin connection.

Differences from ``/ws`` a client sees: no ``metrics``, partials or observations are sent
(they are not Realtime events); the pipeline always takes video (``input_image`` items and
the binary camera frames of the live-camera extension); audio arrives at 24 kHz and the
client source resamples it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from streamkit.clock import NS_PER_MS, Clock
from streamkit.events import Event
from streamkit.transport.codecs.realtime import RealtimeCodec
from streamkit.transport.commands import AddText, ClearInput, ConfigureTurns, ImageIn, Respond
from streamkit.transport.outbox import OutboxClosed, OutItem
from streamkit.transport.protocol import (
    AudioAppend,
    InputCommit,
    Limits,
    ProtocolError,
    ResponseCancel,
    ServerEvent,
    SessionConfig,
    SessionCreated,
    VideoFrameIn,
)
from streamkit.transport.ratelimit import RateLimiter
from streamkit.transport.session import DeviceSourceFactory, PipelineFactory, Session

__all__ = ["RealtimeSession"]

_CONVERSATION = {AddText: "add_text", Respond: "respond", ClearInput: "clear_input"}


class RealtimeSession(Session):
    """One ``/v1/realtime`` client (see the module docstring).

    Args:
        ws: the accepted connection.
        pipelines / config / limits / device_source / clock / close_timeout_s: as for
            :class:`Session`; ``config.pipeline`` is the pipeline every Realtime session runs.
        model: the client's ``?model=`` (echoed in ``session.model``).
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
        model: str | None = None,
    ) -> None:
        config = msgspec.structs.replace(
            config, source="client", video=True, partials=False, metrics_interval_ms=0
        )
        super().__init__(ws, pipelines, config, limits, device_source, clock, close_timeout_s)
        self.codec = RealtimeCodec(self.id, model)
        self.turns: ConfigureTurns = self.codec.turns()

    # -- the connection loop -------------------------------------------------------------

    async def _receive(self) -> None:
        # The pipeline starts now (not at the first audio): answers are ready sooner, and the
        # codec learns whether the pipeline can speak before the client asks for audio.
        if await self._ensure_started() is None:
            self.codec.audio_out = bool(getattr(self.controls, "speaks", False))
        limiter = RateLimiter(self.limits, self.clock.now())
        try:
            async for message in self.ws:
                if not limiter.allow(self.clock.now(), len(message)):
                    self.metrics.counter("ws.errors").inc()
                    await self._put(
                        self.codec.refuse("rate_limited", "message rate or byte rate exceeded")
                    )
                    continue
                for out in self.codec.decode(message):
                    if isinstance(out, OutItem):
                        if out.type == "error":
                            self.errors += 1
                            self.metrics.counter("ws.errors").inc()
                        await self._put([out])
                        continue
                    value = await self.handle(out)
                    await self._put(self.codec.result(out, value))
                if self.close_code is not None:
                    return
        except (ConnectionClosed, OutboxClosed):
            return

    async def _put(self, items: list[OutItem]) -> None:
        for item in items:
            await self.outbox.put(item)

    # -- commands (protocol-neutral) -----------------------------------------------------

    async def handle(self, command: Any) -> Any:
        """Carry out one command; returns its value or the :class:`ProtocolError` refusing it.

        Values: ``InputCommit`` → the utterance id it finalises (or None);
        ``ResponseCancel`` → whether an answer was stopped; others → None.
        """
        if isinstance(command, AudioAppend | VideoFrameIn | ImageIn):
            source = await self._client_source()
            if isinstance(source, ProtocolError):
                return source
            if isinstance(command, AudioAppend):
                self.metrics.counter("ws.bytes_in").inc(len(command.samples) * 2)
                return await source.push_audio(command)
            if isinstance(command, VideoFrameIn):
                return source.push_video(command)
            return source.push_image(command.data, command.pts)
        if isinstance(command, ConfigureTurns):
            self.turns = command
            return await self._apply_turns()
        if isinstance(command, ResponseCancel) and self.controls is None:
            return False
        problem = await self._ensure_started()
        if problem is not None:
            return problem
        assert self.controls is not None
        if isinstance(command, InputCommit):
            if self.source is not None:
                await self.source.flushed()
            return await _call(self.controls.commit_input())
        if isinstance(command, ResponseCancel):
            return bool(await _call(self.controls.cancel_response()))
        if isinstance(command, Respond) and not getattr(self.controls, "answers", True):
            return ProtocolError("unsupported_event", "this pipeline does not answer (no LM)")
        name = _CONVERSATION.get(type(command))
        method = getattr(self.controls, name, None) if name else None
        if method is None:
            what = type(command).__name__
            return ProtocolError("unsupported_event", f"this pipeline has no {what} (no LM?)")
        if isinstance(command, AddText):
            return await _call(method(command.text, command.role))
        if isinstance(command, Respond):
            return await _call(method(command.wait_for, command.instructions, command.max_tokens))
        assert isinstance(command, ClearInput)
        return await _call(method(command.discard))

    async def _apply_turns(self) -> ProtocolError | None:
        configure = getattr(self.controls, "configure_turns", None)
        if configure is not None:
            await _call(configure(self.turns))
        speak = getattr(self.controls, "set_output_audio", None)
        if speak is not None:
            await _call(speak(self.turns.audio_out))
        return None

    async def _ensure_started(self) -> ProtocolError | None:
        started = self.pipeline is not None
        problem = await super()._ensure_started()
        if problem is None and not started and self.pipeline is not None:
            source = self.source
            if source is not None:
                self.codec.audio_ms = lambda t: source.input_ns(t) // NS_PER_MS
            await self._apply_turns()
        return problem

    # -- events out through the codec ----------------------------------------------------

    def _item(self, event: msgspec.Struct, lineage: str | None) -> OutItem | None:
        return None  # every event goes through the codec (see send_event / _offer)

    def _offer(self, event: ServerEvent) -> None:
        if self.outbox.closed:
            return
        items = (
            self.codec.created() if isinstance(event, SessionCreated) else self.codec.encode(event)
        )
        for item in items:
            self.outbox.offer(item)

    async def send_event(self, event: Event | msgspec.Struct, lineage: str | None = None) -> None:
        for item in self.codec.encode(event):
            await self.outbox.put(replace(item, lineage=lineage))
        await super().send_event(event, lineage)  # the base's bookkeeping (nothing is queued)


async def _call(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result
