"""Protocol v1 (``streamkit.v1``): the wire format, pure data (no codec, no I/O, no clock).

Wire format (see ``docs/protocol.md``; the JSON Schema is ``transport/schema.json``):

- **Text frames** carry one JSON object whose ``type`` names the message. Client → server:
  ``session.update``, ``input.commit``, ``response.cancel``. Server → client: the events of
  :mod:`streamkit.core.events` (their msgspec tag is the ``type``) plus ``session.created``,
  ``session.updated`` and ``metrics``.
- **Binary frames** carry media: a 24-byte little-endian header (:class:`FrameHeader`)
  followed by the payload. ``kind`` 1 = ``audio.append`` (16 kHz mono PCM16LE), ``kind`` 2 =
  ``video.frame`` (one JPEG image). ``capture_ns`` is the client's capture time of the first
  sample / the frame on the client's own clock (ns); the server maps it onto the shared clock.

This module names the messages, their fields, the header layout and the stable error and
close codes. Decoding and encoding frames is :mod:`streamkit.transport.codecs.v1`
(``decode_text``, ``decode_binary``, ``encode_*``); what a session may spend is
:mod:`streamkit.transport.limits`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from streamkit.core.clock import Nanos
from streamkit.core.events import (
    ErrorEvent,
    Observation,
    ResponseAudioDone,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
)

__all__ = [
    "AUDIO_FORMAT_PCM16",
    "CLIENT_MESSAGES",
    "CLOSE_CODES",
    "ERROR_CODES",
    "HEADER",
    "KIND_AUDIO",
    "KIND_OUTPUT_AUDIO",
    "KIND_VIDEO",
    "PROTOCOL",
    "SERVER_EVENTS",
    "VIDEO_FORMAT_JPEG",
    "AudioAppend",
    "ClientMessage",
    "Decoded",
    "FrameHeader",
    "InputCommit",
    "MetricsEvent",
    "OutputAudio",
    "ProtocolError",
    "ResponseCancel",
    "ServerEvent",
    "SessionConfig",
    "SessionCreated",
    "SessionUpdate",
    "SessionUpdated",
    "TurnSettings",
    "VideoFrameIn",
]

PROTOCOL: Final = "streamkit.v1"
"""Protocol name and version, sent in ``session.created``."""

# -- binary media frames -----------------------------------------------------------------

HEADER: Final = struct.Struct("<2sBBBBHIIq")
"""magic ``b"SK"``, version, kind, format, channels, reserved, sample_rate, seq, capture_ns."""
MAGIC: Final = b"SK"
VERSION: Final = 1
KIND_AUDIO: Final = 1
KIND_VIDEO: Final = 2
KIND_OUTPUT_AUDIO: Final = 3
"""Server → client ``response.audio``: the spoken answer (the header's ``reserved`` field is the
length of a JSON metadata object between the header and the PCM16LE payload)."""
AUDIO_FORMAT_PCM16: Final = 1
VIDEO_FORMAT_JPEG: Final = 2
AUDIO_SAMPLE_RATE: Final = 16_000

ERROR_CODES: Final[dict[str, str]] = {
    "invalid_json": "a text frame that is not a JSON object (or nested or numbered beyond limits)",
    "unknown_type": "a JSON message without a known `type`",
    "invalid_message": "a known message with missing, unknown or wrongly typed fields",
    "message_too_large": "a message over the per-kind size limit (see `limits`)",
    "invalid_frame": "a binary frame that is truncated, has a bad magic/kind or a bad length",
    "unsupported_version": "a binary frame header version other than 1",
    "unsupported_format": "audio not 16 kHz mono PCM16, or video not JPEG",
    "invalid_image": "a video frame whose JPEG does not decode",
    "rate_limited": "a text/video message over the message or byte rate, discarded (audio waits)",
    "invalid_state": "a message not allowed now (e.g. changing the pipeline once it runs)",
    "unknown_pipeline": "`session.update` named a pipeline the server does not have",
    "unsupported_source": "`session.update` asked for a media source the server cannot open",
    "pipeline_error": "the session's pipeline failed; the session closes with 1011",
}
"""Stable ``error`` event codes (documented in ``docs/protocol.md``)."""

CLOSE_CODES: Final[dict[int, str]] = {
    1000: "normal closure (either side)",
    1001: "server shutting down (an answer in progress first gets `response.done`, cancelled)",
    1007: "a text frame that is not valid UTF-8 (refused by the transport)",
    1009: "a frame over the hard transport limit (`limits.max_frame_bytes`)",
    1011: "the session's pipeline failed (an `error` event with code `pipeline_error` precedes)",
    4003: "slow consumer: the client did not read its events within `limits.send_deadline_ms`",
    4008: "too many protocol errors in a row (`limits.max_consecutive_errors`)",
}
"""WebSocket close codes the server uses (documented in ``docs/protocol.md``)."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The 24-byte header of a binary media frame (all integers little-endian)."""

    kind: int
    format: int
    channels: int
    sample_rate: int
    seq: int
    capture_ns: Nanos
    version: int = VERSION

    def pack(self) -> bytes:
        return HEADER.pack(
            MAGIC,
            self.version,
            self.kind,
            self.format,
            self.channels,
            0,
            self.sample_rate,
            self.seq,
            self.capture_ns,
        )


# -- client → server ---------------------------------------------------------------------


Millis = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class TurnSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """End-of-turn thresholds a session sets (milliseconds; null: the server's value).

    ``threshold``: ``smart`` ends the turn when Smart Turn's P(complete) reaches it;
    ``pause_ms``: the silence at which the model is asked and an answer speculated;
    ``max_silence_ms``: ``smart`` ends the turn after this much silence whatever the model
    says; ``question_silence_ms`` / ``statement_silence_ms`` / ``unfinished_silence_ms``: the
    same when the words heard end with "?" / end a sentence ("." or "!") / stop mid-phrase
    (0: off); ``hangover_ms``: ``vad`` ends the turn after this
    much silence. A field a later ``session.update`` leaves out keeps its value.
    """

    threshold: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    pause_ms: Annotated[int, msgspec.Meta(ge=32, le=2_000)] | None = None
    max_silence_ms: Annotated[int, msgspec.Meta(ge=100, le=10_000)] | None = None
    question_silence_ms: Millis | None = None
    statement_silence_ms: Millis | None = None
    unfinished_silence_ms: Millis | None = None
    hangover_ms: Annotated[int, msgspec.Meta(ge=100, le=10_000)] | None = None

    def merged(self, newer: TurnSettings) -> TurnSettings:
        """These settings with ``newer``'s non-null fields over them."""
        given = {f: getattr(newer, f) for f in newer.__struct_fields__}
        return msgspec.structs.replace(self, **{f: v for f, v in given.items() if v is not None})


class SessionConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A session's settings; ``session.update`` changes the fields it names.

    ``pipeline``, ``source`` and ``video`` may change only before the pipeline starts (on
    the first ``session.update`` naming a pipeline, media frame or ``input.commit``).
    ``metrics_interval_ms`` 0 turns
    metrics off. ``video``: the client will send ``video.frame`` (the pipeline then runs its
    aligner and vision encoder); without it video frames are refused. ``turn_detection``: how
    the end of the user's turn is decided (``vad``: silence only; ``smart``: the Smart Turn
    model at short pauses; ``auto``: the server's default), changeable at any time; ``turn``:
    its thresholds (:class:`TurnSettings`), changeable at any time, merged field by field.
    ``output_audio``: send the spoken answer (``response.audio`` binary frames and
    ``response.audio.done``); off, the answer is text only and the voice does not run.
    ``instructions``: the assistant's system prompt for this session's answers (``""``: the
    server's, e.g. ``serve --instructions``), changeable at any time; the server keeps its
    "I can't tell" policy after it. ``grounding``: ``facts`` answers scene and memory questions
    from the camera facts and what the user said (and checks the model's other answers),
    ``model`` lets the model answer everything (a strong ``--lm-url`` model); ``""``: the
    server's (``serve --grounding``), changeable at any time.
    """

    pipeline: str = "assistant"
    source: Literal["client", "devices"] = "client"
    partials: bool = True
    metrics_interval_ms: int = 1000
    keyframes: bool = False
    video: bool = False
    turn_detection: Literal["auto", "vad", "smart"] = "auto"
    turn: TurnSettings = TurnSettings()
    output_audio: bool = False
    instructions: str = ""
    grounding: Literal["", "facts", "model"] = ""


class SessionUpdate(msgspec.Struct, frozen=True, tag="session.update", forbid_unknown_fields=True):
    """Change session settings (fields left out keep their value)."""

    pipeline: str | None = None
    source: Literal["client", "devices"] | None = None
    partials: bool | None = None
    metrics_interval_ms: int | None = None
    keyframes: bool | None = None
    video: bool | None = None
    turn_detection: Literal["auto", "vad", "smart"] | None = None
    turn: TurnSettings | None = None
    output_audio: bool | None = None
    instructions: str | None = None
    grounding: Literal["", "facts", "model"] | None = None


class InputCommit(msgspec.Struct, frozen=True, tag="input.commit", forbid_unknown_fields=True):
    """End the current utterance now (finalize its transcript and answer it)."""


class ResponseCancel(
    msgspec.Struct, frozen=True, tag="response.cancel", forbid_unknown_fields=True
):
    """Stop the answer being generated (``response_id`` None: whichever is running)."""

    response_id: str | None = None


ClientMessage = SessionUpdate | InputCommit | ResponseCancel
"""A JSON client → server message."""

CLIENT_MESSAGES: Final = (
    "session.update",
    "audio.append",
    "video.frame",
    "input.commit",
    "response.cancel",
)


@dataclass(frozen=True, slots=True)
class AudioAppend:
    """A decoded ``audio.append`` frame: float32 samples in [-1, 1] at 16 kHz."""

    header: FrameHeader
    samples: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class VideoFrameIn:
    """A decoded ``video.frame`` header and its (not yet decoded) JPEG bytes."""

    header: FrameHeader
    jpeg: bytes


@dataclass(frozen=True, slots=True)
class OutputAudio:
    """A decoded ``response.audio`` frame (what a client receives): header, metadata, samples.

    ``header.capture_ns`` is the chunk's playout time on the server's shared clock,
    ``header.seq`` its index in the answer, ``header.sample_rate`` its rate.
    """

    header: FrameHeader
    response_id: str
    utterance_id: str
    text: str
    samples: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """Why a message was refused; becomes an ``error`` event."""

    code: str
    message: str

    def event(self) -> ErrorEvent:
        return ErrorEvent(code=self.code, message=self.message)


Decoded = ClientMessage | AudioAppend | VideoFrameIn | ProtocolError


# -- server → client ---------------------------------------------------------------------


class LimitsInfo(msgspec.Struct, frozen=True):
    """The limits a session runs under (sent in ``session.created``)."""

    max_text_bytes: int
    max_audio_bytes: int
    max_video_bytes: int
    max_frame_bytes: int
    messages_per_s: float
    bytes_per_s: float
    send_deadline_ms: int


class SessionCreated(msgspec.Struct, frozen=True, tag="session.created"):
    """First event of every session. ``server_time_ns``: the shared clock when sent."""

    session_id: str
    protocol: str
    server_time_ns: Nanos
    config: SessionConfig
    pipelines: list[str]
    limits: LimitsInfo


class SessionUpdated(msgspec.Struct, frozen=True, tag="session.updated"):
    """Answer to ``session.update``: the settings now in force."""

    config: SessionConfig


class MetricsEvent(msgspec.Struct, frozen=True, tag="metrics"):
    """Periodic snapshot of the session's metrics (``MetricsRegistry.snapshot()``, ns).

    ``lineage`` maps utterance id → event name → shared-clock time (ns); ``transport`` holds
    the session's transport counters (audio received, drops, errors, outbox).
    """

    t: Nanos
    transport: dict[str, int]
    snapshot: dict[str, Any]
    lineage: dict[str, dict[str, Nanos]]


ServerEvent = (
    SessionCreated
    | SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | TranscriptPartial
    | TranscriptFinal
    | Observation
    | ResponseDelta
    | ResponseDone
    | ResponseAudioDone
    | MetricsEvent
    | ErrorEvent
)
"""Any server → client event (JSON; ``response.audio`` is a binary frame, see
:func:`encode_output_audio`)."""

SERVER_EVENTS: Final = (
    "session.created",
    "session.updated",
    "speech.started",
    "speech.stopped",
    "transcript.partial",
    "transcript.final",
    "vision.observation",
    "response.delta",
    "response.done",
    "response.audio",
    "response.audio.done",
    "metrics",
    "error",
)
