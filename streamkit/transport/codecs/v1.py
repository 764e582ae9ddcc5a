"""The ``/ws`` protocol (``streamkit.v1``) as a session codec: frames → commands, events → frames.

The messages themselves — their types, the binary media header, the error codes — are
:mod:`streamkit.transport.protocol`. This module decodes and encodes them:

- :func:`decode_text` / :func:`decode_binary`: one frame → a client message, or a
  :class:`~streamkit.transport.protocol.ProtocolError` (a stable ``code`` and a human
  ``message``), never an exception: the session answers with an ``error`` event and lives on.
  What one text frame may make the decoder spend is bounded before parsing: its size
  (``limits.max_text_bytes``), its nesting depth (``limits.max_json_depth``; deeper JSON would
  exhaust the recursive parsers' stack) and the length of each number literal
  (``limits.max_number_chars``; a 4,000-digit integer costs quadratic time to convert);
- :func:`encode_event`, :func:`encode_audio`, :func:`encode_video`,
  :func:`encode_output_audio` / :func:`decode_output_audio`: the other direction (and the
  client's side of it);
- :class:`V1Codec`: what a :class:`~streamkit.transport.session.Session` drives (the same
  four calls as the Realtime codec): :meth:`V1Codec.created` (``session.created``),
  :meth:`V1Codec.decode` (one frame → its decoded message, which *is* the command:
  ``AudioAppend``, ``VideoFrameIn``, ``SessionUpdate``, ``InputCommit``, ``ResponseCancel``;
  or a ``ProtocolError``), :meth:`V1Codec.result` (``session.updated`` after an update, one
  ``error`` per refusal) and :meth:`V1Codec.encode` (a pipeline event → at most one frame,
  with what may be dropped or coalesced on a slow client: partials per utterance,
  observations, metrics). Stateless apart from the session settings it reads (partials,
  keyframes, output audio).

No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from streamkit.core.clock import Nanos
from streamkit.core.events import Observation, ResponseAudio, ResponseAudioDone, TranscriptPartial
from streamkit.transport.limits import Limits, is_droppable, json_excess
from streamkit.transport.outbox import OutItem
from streamkit.transport.protocol import (
    AUDIO_FORMAT_PCM16,
    AUDIO_SAMPLE_RATE,
    HEADER,
    KIND_AUDIO,
    KIND_OUTPUT_AUDIO,
    KIND_VIDEO,
    MAGIC,
    PROTOCOL,
    VERSION,
    VIDEO_FORMAT_JPEG,
    AudioAppend,
    ClientMessage,
    FrameHeader,
    LimitsInfo,
    OutputAudio,
    ProtocolError,
    ServerEvent,
    SessionConfig,
    SessionCreated,
    SessionUpdate,
    SessionUpdated,
    VideoFrameIn,
)

__all__ = [
    "V1Codec",
    "decode_binary",
    "decode_output_audio",
    "decode_text",
    "encode_audio",
    "encode_event",
    "encode_output_audio",
    "encode_video",
]


# -- frames ------------------------------------------------------------------------------

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


# -- the session's codec ---------------------------------------------------------------


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
