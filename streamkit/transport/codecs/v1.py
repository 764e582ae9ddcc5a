"""The ``/ws`` protocol (``streamkit.v1``) as a session codec: frames → commands, events → frames.

The wire format itself — message types, the binary media header, ``decode_text`` /
``decode_binary`` / ``encode_event`` — is :mod:`streamkit.transport.protocol`; this module is
the part a :class:`~streamkit.transport.session.Session` drives (the same four calls as the
Realtime codec): :meth:`V1Codec.created` (``session.created``), :meth:`V1Codec.decode` (one
frame → its decoded message, which *is* the command: ``AudioAppend``, ``VideoFrameIn``,
``SessionUpdate``, ``InputCommit``, ``ResponseCancel``; or a ``ProtocolError``),
:meth:`V1Codec.result` (``session.updated`` after an update, one ``error`` per refusal) and
:meth:`V1Codec.encode` (a pipeline event → at most one frame, with what may be dropped or
coalesced on a slow client: partials per utterance, observations, metrics). Stateless apart
from the session settings it reads (partials, keyframes, output audio). No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import msgspec

from streamkit.core.events import Observation, ResponseAudio, ResponseAudioDone, TranscriptPartial
from streamkit.transport.limits import Limits, is_droppable
from streamkit.transport.outbox import OutItem
from streamkit.transport.protocol import (
    PROTOCOL,
    LimitsInfo,
    ProtocolError,
    SessionConfig,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    decode_binary,
    decode_text,
    encode_event,
    encode_output_audio,
)

__all__ = ["V1Codec"]


def _event_type(event: msgspec.Struct) -> str:
    tag = type(event).__struct_config__.tag
    return tag if isinstance(tag, str) else type(event).__name__


class V1Codec:
    """The ``/ws`` codec of one session (see the module docstring).

    Args:
        limits: size limits the decoder enforces.
        config: reads the session's current settings (``partials``, ``keyframes``,
            ``output_audio``) when encoding.
    """

    start_at_connect = False  # the pipeline starts at the first media or a named pipeline

    def __init__(self, limits: Limits, config: Callable[[], SessionConfig]) -> None:
        self.limits = limits
        self._config = config

    def configure(self, config: SessionConfig) -> SessionConfig:
        """The session's initial settings (unchanged for ``/ws``)."""
        return config

    def started(self, session: Any) -> None:
        """The session's pipeline was built (nothing to learn for ``/ws``)."""

    def created(
        self, session_id: str, now: int, config: SessionConfig, pipelines: Sequence[str]
    ) -> list[OutItem]:
        lim = self.limits
        event = SessionCreated(
            session_id=session_id,
            protocol=PROTOCOL,
            server_time_ns=now,
            config=config,
            pipelines=sorted(pipelines),
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
        return self.encode(event)

    def decode(self, message: str | bytes) -> list[Any]:
        """One frame → ``[message]`` (the command) or ``[ProtocolError]``."""
        if isinstance(message, str):
            return [decode_text(message, self.limits)]
        return [decode_binary(bytes(message), self.limits)]

    def refuse(self, problem: ProtocolError) -> list[OutItem]:
        """The ``error`` event for a refused frame or command."""
        return [replace(item, code=problem.code) for item in self.encode(problem.event())]

    def result(self, command: Any, value: Any) -> list[OutItem]:
        """The session ran ``command``; ``value`` is what it returned."""
        if isinstance(value, ProtocolError):
            return self.refuse(value)
        if isinstance(command, SessionUpdate) and isinstance(value, SessionConfig):
            return self.encode(SessionUpdated(config=value))
        return []

    def encode(self, event: msgspec.Struct, lineage: str | None = None) -> list[OutItem]:
        """A pipeline or session event → its frame (none when the session does not want it)."""
        config = self._config()
        kind = _event_type(event)
        if isinstance(event, ResponseAudio | ResponseAudioDone):
            if not config.output_audio:
                return []
            if isinstance(event, ResponseAudio):  # a binary frame, never dropped
                data = encode_output_audio(event)
                return [OutItem(kind, data, False, None, lineage, True)]
        if isinstance(event, TranscriptPartial):
            if not config.partials:
                return []
            key: str | None = f"partial:{event.utterance_id}"
        elif isinstance(event, Observation):
            key = "observation"
            if not config.keyframes and event.keyframe_jpeg is not None:
                event = msgspec.structs.replace(event, keyframe_jpeg=None)
        else:
            key = kind if kind == "metrics" else None
        data = encode_event(event)  # type: ignore[arg-type]
        return [OutItem(kind, data, is_droppable(kind), key, lineage)]
