"""Protocol v1 codec (pure, sans-I/O): client messages in, server events out.

Wire format (see ``docs/protocol.md``; the JSON Schema is ``transport/schema.json``):

- **Text frames** carry one JSON object whose ``type`` names the message. Client → server:
  ``session.update``, ``input.commit``, ``response.cancel``. Server → client: the events of
  :mod:`streamkit.core.events` (their msgspec tag is the ``type``) plus ``session.created``,
  ``session.updated`` and ``metrics``.
- **Binary frames** carry media: a 24-byte little-endian header (:class:`FrameHeader`)
  followed by the payload. ``kind`` 1 = ``audio.append`` (16 kHz mono PCM16LE), ``kind`` 2 =
  ``video.frame`` (one JPEG image). ``capture_ns`` is the client's capture time of the first
  sample / the frame on the client's own clock (ns); the server maps it onto the shared clock.

Every malformed message decodes to a :class:`ProtocolError` (a stable ``code`` and a human
``message``), never an exception: the session answers with an ``error`` event and lives on.
What one text frame may make the decoder spend is bounded before parsing: its size
(``limits.max_text_bytes``), its nesting depth (``limits.max_json_depth``; deeper JSON would
exhaust the recursive parsers' stack) and the length of each number literal
(``limits.max_number_chars``; a 4,000-digit integer costs quadratic time to convert).
Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from streamkit.core.clock import Nanos
from streamkit.core.events import (
    ErrorEvent,
    Observation,
    ResponseAudio,
    ResponseAudioDone,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
)
from streamkit.transport.limits import Limits, json_excess

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
    "VideoFrameIn",
    "decode_binary",
    "decode_output_audio",
    "decode_text",
    "encode_audio",
    "encode_event",
    "encode_output_audio",
    "encode_video",
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


class SessionConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A session's settings; ``session.update`` changes the fields it names.

    ``pipeline``, ``source`` and ``video`` may change only before the pipeline starts (on
    the first ``session.update`` naming a pipeline, media frame or ``input.commit``).
    ``metrics_interval_ms`` 0 turns
    metrics off. ``video``: the client will send ``video.frame`` (the pipeline then runs its
    aligner and vision encoder); without it video frames are refused. ``turn_detection``: how
    the end of the user's turn is decided (``vad``: silence only; ``smart``: the Smart Turn
    model at short pauses; ``auto``: the server's default), changeable at any time.
    ``output_audio``: send the spoken answer (``response.audio`` binary frames and
    ``response.audio.done``); off, the answer is text only and the voice does not run.
    ``instructions``: the assistant's system prompt for this session's answers (``""``: the
    server's, e.g. ``serve --instructions``), changeable at any time; the server keeps its
    "I can't tell" policy after it.
    """

    pipeline: str = "assistant"
    source: Literal["client", "devices"] = "client"
    partials: bool = True
    metrics_interval_ms: int = 1000
    keyframes: bool = False
    video: bool = False
    turn_detection: Literal["auto", "vad", "smart"] = "auto"
    output_audio: bool = False
    instructions: str = ""


class SessionUpdate(msgspec.Struct, frozen=True, tag="session.update", forbid_unknown_fields=True):
    """Change session settings (fields left out keep their value)."""

    pipeline: str | None = None
    source: Literal["client", "devices"] | None = None
    partials: bool | None = None
    metrics_interval_ms: int | None = None
    keyframes: bool | None = None
    video: bool | None = None
    turn_detection: Literal["auto", "vad", "smart"] | None = None
    output_audio: bool | None = None
    instructions: str | None = None


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

# -- codec -------------------------------------------------------------------------------

_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()
_TYPES: Final = frozenset({"session.update", "input.commit", "response.cancel"})


def decode_text(data: str | bytes, limits: Limits | None = None) -> ClientMessage | ProtocolError:
    """Decode one text frame into a client message, or say why not (never raises)."""
    limits = limits or Limits()
    try:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if len(raw) > limits.max_text_bytes:
            return ProtocolError(
                "message_too_large", f"text message of {len(raw)} bytes > {limits.max_text_bytes}"
            )
        excess = json_excess(raw, limits.max_json_depth, limits.max_number_chars)
        if excess is not None:
            return ProtocolError("invalid_json", excess)
        try:
            return _decoder.decode(raw)
        except msgspec.ValidationError as error:
            return _classify(raw, str(error))
        except msgspec.DecodeError as error:
            return ProtocolError("invalid_json", f"not valid JSON: {error}"[:300])
    except (RecursionError, MemoryError, ValueError, TypeError) as error:  # defence in depth
        return ProtocolError("invalid_json", f"cannot decode: {type(error).__name__}")


def _classify(raw: bytes, detail: str) -> ProtocolError:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as error:  # pragma: no cover - decoded once already
        return ProtocolError("invalid_json", f"not valid JSON: {error}"[:300])
    if not isinstance(value, dict):
        return ProtocolError("invalid_json", f"expected a JSON object, got {type(value).__name__}")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        if kind in ("audio.append", "video.frame"):
            return ProtocolError("unknown_type", f"{kind!r} is sent as a binary frame")
        return ProtocolError("unknown_type", f"unknown message type {kind!r}"[:200])
    return ProtocolError("invalid_message", f"{kind}: {detail}"[:300])


def decode_binary(
    data: bytes, limits: Limits | None = None
) -> AudioAppend | VideoFrameIn | ProtocolError:
    """Decode one binary media frame (header + payload), or say why not."""
    limits = limits or Limits()
    if len(data) < HEADER.size:
        return ProtocolError(
            "invalid_frame", f"binary frame of {len(data)} bytes < the {HEADER.size}-byte header"
        )
    magic, version, kind, fmt, channels, _, rate, seq, capture = HEADER.unpack_from(data)
    if magic != MAGIC:
        return ProtocolError("invalid_frame", f"bad magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        return ProtocolError("unsupported_version", f"header version {version}, expected 1")
    header = FrameHeader(kind, fmt, channels, rate, seq, capture, version)
    payload = data[HEADER.size :]
    if kind == KIND_AUDIO:
        return _decode_audio(header, payload, limits)
    if kind == KIND_VIDEO:
        if len(payload) > limits.max_video_bytes:
            return ProtocolError(
                "message_too_large",
                f"video frame of {len(payload)} bytes > {limits.max_video_bytes}",
            )
        if fmt != VIDEO_FORMAT_JPEG:
            return ProtocolError("unsupported_format", f"video format {fmt}, only 2 (JPEG)")
        if len(payload) < 4 or payload[:2] != b"\xff\xd8":
            return ProtocolError("invalid_image", "video payload is not a JPEG (no SOI marker)")
        return VideoFrameIn(header, bytes(payload))
    return ProtocolError("invalid_frame", f"unknown frame kind {kind} (1 audio, 2 video)")


def _decode_audio(
    header: FrameHeader, payload: bytes, limits: Limits
) -> AudioAppend | ProtocolError:
    if len(payload) > limits.max_audio_bytes:
        return ProtocolError(
            "message_too_large", f"audio frame of {len(payload)} bytes > {limits.max_audio_bytes}"
        )
    if (header.format, header.channels, header.sample_rate) != (
        AUDIO_FORMAT_PCM16,
        1,
        AUDIO_SAMPLE_RATE,
    ):
        return ProtocolError(
            "unsupported_format",
            f"audio format={header.format} channels={header.channels} "
            f"rate={header.sample_rate}; expected format=1 (PCM16LE) channels=1 rate=16000",
        )
    if not payload or len(payload) % 2:
        return ProtocolError(
            "invalid_frame", f"PCM16 payload of {len(payload)} bytes (must be even and > 0)"
        )
    pcm = np.frombuffer(payload, dtype="<i2")
    samples = (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)
    return AudioAppend(header, samples)


def encode_event(event: ServerEvent) -> bytes:
    """One server event as the UTF-8 JSON of a text frame."""
    return _encoder.encode(event)


def encode_audio(samples: npt.NDArray[Any], seq: int, capture_ns: Nanos) -> bytes:
    """An ``audio.append`` frame from float samples in [-1, 1] (or int16) at 16 kHz mono."""
    if samples.dtype == np.int16:
        pcm = samples
    else:
        pcm = (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype("<i2")
    header = FrameHeader(KIND_AUDIO, AUDIO_FORMAT_PCM16, 1, AUDIO_SAMPLE_RATE, seq, capture_ns)
    return header.pack() + pcm.astype("<i2", copy=False).tobytes()


def encode_video(jpeg: bytes, seq: int, capture_ns: Nanos) -> bytes:
    """A ``video.frame`` frame from JPEG bytes."""
    return FrameHeader(KIND_VIDEO, VIDEO_FORMAT_JPEG, 0, 0, seq, capture_ns).pack() + jpeg


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


class _AudioMeta(msgspec.Struct, frozen=True):
    type: str
    response_id: str
    utterance_id: str
    text: str = ""


_meta_decoder = msgspec.json.Decoder(_AudioMeta)


def encode_output_audio(event: ResponseAudio) -> bytes:
    """A ``response.audio`` frame: header (kind 3, PCM16, mono, the voice's rate, seq = chunk
    index, capture_ns = playout pts, reserved = metadata length) + JSON metadata + PCM16LE."""
    meta = _encoder.encode(
        _AudioMeta("response.audio", event.response_id, event.utterance_id, event.text)
    )
    header = HEADER.pack(
        MAGIC, VERSION, KIND_OUTPUT_AUDIO, AUDIO_FORMAT_PCM16, 1, len(meta),
        event.sample_rate, event.index, event.pts,
    )
    return header + meta + event.pcm


def decode_output_audio(data: bytes) -> OutputAudio | ProtocolError:
    """Decode a ``response.audio`` frame (client side), or say why not."""
    if len(data) < HEADER.size:
        return ProtocolError("invalid_frame", f"binary frame of {len(data)} bytes < header")
    magic, version, kind, fmt, channels, meta_len, rate, seq, pts = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or kind != KIND_OUTPUT_AUDIO:
        return ProtocolError("invalid_frame", f"not a response.audio frame (kind {kind})")
    if fmt != AUDIO_FORMAT_PCM16 or channels != 1 or rate <= 0:
        return ProtocolError("unsupported_format", f"audio format={fmt} channels={channels}")
    end = HEADER.size + meta_len
    if len(data) < end or (len(data) - end) % 2:
        return ProtocolError("invalid_frame", "truncated response.audio frame")
    try:
        meta = _meta_decoder.decode(data[HEADER.size : end])
    except msgspec.DecodeError as error:
        return ProtocolError("invalid_frame", f"response.audio metadata: {error}")
    pcm = np.frombuffer(data[end:], dtype="<i2")
    samples = (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)
    header = FrameHeader(kind, fmt, channels, rate, seq, pts, version)
    return OutputAudio(header, meta.response_id, meta.utterance_id, meta.text, samples)
