"""How packets are stored in an MCAP session: topics, schemas and the (de)coding of each item.

Every message is JSON (``message_encoding="json"``) with a JSON Schema (``jsonschema``), so a
session opens in Foxglove as it is:

================  ========================  ==============================================
topic             schema                    content
================  ========================  ==============================================
``/audio``        ``foxglove.RawAudio``     16-bit little-endian PCM (``format="pcm-s16"``),
                                            base64 in ``data``; ``sample_rate`` Hz, mono
``/video``        ``foxglove.CompressedImage``  JPEG (``format="jpeg"``), base64 in ``data``
``/<stream>``     ``streamkit.Event``       an :mod:`streamkit.core.events` payload under
                                            ``event`` (tagged by ``event.type``)
``/<stream>``     ``streamkit.Data``        any other JSON-able payload under ``payload``
``/control``      ``streamkit.Control``     gap / flush / end-of-stream, in band
``/metrics``      ``streamkit.Metrics``     a :meth:`MetricsRegistry.snapshot` (+ raw samples
                                            of each histogram in the final one)
================  ========================  ==============================================

Every packet message also carries the envelope fields ``stream``, ``seq``, ``pts_ns``,
``duration_ns``, ``epoch`` and ``lineage`` (the :class:`~streamkit.core.packet.Packet` fields), and
``timestamp`` = capture pts as Foxglove's ``{sec, nsec}``. The MCAP record's ``publish_time`` is
the capture pts (clamped at 0) and ``log_time`` the arrival time at the recorder, both on the
shared clock in ns; the difference is the capture-to-recorder delay, jitter included.

Pure: no I/O. Audio is quantised to 16 bits on the way in (float32 → s16 → float32 on replay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast, get_args

import cv2
import msgspec
import numpy as np

from streamkit.core.clock import NS_PER_S, Nanos
from streamkit.core.events import Event
from streamkit.core.media import AudioChunk, VideoFrame
from streamkit.core.packet import Control, EndOfStream, Flush, Gap, Packet

__all__ = [
    "AUDIO_SCHEMA",
    "CONTROL_SCHEMA",
    "DATA_SCHEMA",
    "EVENT_SCHEMA",
    "IMAGE_SCHEMA",
    "METRICS_SCHEMA",
    "METRICS_TOPIC",
    "SCHEMAS",
    "Encoded",
    "MetricsSample",
    "decode_message",
    "encode_control",
    "encode_metrics",
    "encode_packet",
]

AUDIO_SCHEMA = "foxglove.RawAudio"
IMAGE_SCHEMA = "foxglove.CompressedImage"
EVENT_SCHEMA = "streamkit.Event"
DATA_SCHEMA = "streamkit.Data"
CONTROL_SCHEMA = "streamkit.Control"
METRICS_SCHEMA = "streamkit.Metrics"
METRICS_TOPIC = "/metrics"
CONTROL_TOPIC = "/control"

_TIME = {
    "type": "object",
    "title": "time",
    "properties": {"sec": {"type": "integer", "minimum": 0}, "nsec": {"type": "integer"}},
}
_ENVELOPE: dict[str, Any] = {
    "timestamp": _TIME,
    "stream": {"type": "string", "description": "Packet.stream"},
    "seq": {"type": "integer", "description": "per-stream sequence number"},
    "pts_ns": {"type": "integer", "description": "capture time on the shared clock (ns)"},
    "duration_ns": {"type": "integer", "description": "span covered (ns)"},
    "epoch": {"type": "integer", "description": "flush generation"},
    "lineage": {"type": ["string", "null"], "description": "utterance id"},
}
_BYTES = {"type": "string", "contentEncoding": "base64"}


def _schema(title: str, description: str, props: dict[str, Any]) -> bytes:
    return json.dumps(
        {"title": title, "description": description, "type": "object", "properties": props}
    ).encode()


SCHEMAS: dict[str, bytes] = {
    AUDIO_SCHEMA: _schema(
        AUDIO_SCHEMA,
        "Mono PCM audio chunk (streamkit: 16-bit LE, 16 kHz unless sample_rate says otherwise)",
        {
            **_ENVELOPE,
            "data": _BYTES,
            "format": {"type": "string", "description": "pcm-s16"},
            "sample_rate": {"type": "integer"},
            "number_of_channels": {"type": "integer"},
        },
    ),
    IMAGE_SCHEMA: _schema(
        IMAGE_SCHEMA,
        "A JPEG video frame (BGR source image, JPEG-encoded)",
        {**_ENVELOPE, "frame_id": {"type": "string"}, "data": _BYTES, "format": {"type": "string"}},
    ),
    EVENT_SCHEMA: _schema(
        EVENT_SCHEMA,
        "A streamkit.core.events payload; event.type is its tag (transcript.final, …)",
        {**_ENVELOPE, "event": {"type": "object"}},
    ),
    DATA_SCHEMA: _schema(DATA_SCHEMA, "Any JSON payload", {**_ENVELOPE, "payload": {}}),
    CONTROL_SCHEMA: _schema(
        CONTROL_SCHEMA,
        "In-band control: gap (start_ns..end_ns), flush (epoch), eos (error)",
        {
            "timestamp": _TIME,
            "kind": {"type": "string", "enum": ["gap", "flush", "eos"]},
            "stream": {"type": "string"},
            "start_ns": {"type": "integer"},
            "end_ns": {"type": "integer"},
            "epoch": {"type": "integer"},
            "reason": {"type": "string"},
            "error": {"type": ["string", "null"]},
        },
    ),
    METRICS_SCHEMA: _schema(
        METRICS_SCHEMA,
        "MetricsRegistry.snapshot(); samples = raw histogram windows (ns), final snapshot only",
        {
            "timestamp": _TIME,
            "snapshot": {"type": "object"},
            "samples": {"type": ["object", "null"]},
        },
    ),
}


class _Time(msgspec.Struct):
    sec: int
    nsec: int


def _time(ns: Nanos) -> _Time:
    ns = max(0, ns)
    return _Time(ns // NS_PER_S, ns % NS_PER_S)


class _Env(msgspec.Struct, kw_only=True):
    timestamp: _Time
    stream: str
    seq: int
    pts_ns: int
    duration_ns: int
    epoch: int = 0
    lineage: str | None = None


class _Audio(_Env, kw_only=True):
    data: bytes
    format: str = "pcm-s16"
    sample_rate: int
    number_of_channels: int = 1


class _Image(_Env, kw_only=True):
    frame_id: str = ""
    data: bytes
    format: str = "jpeg"


class _Event(_Env, kw_only=True):
    event: Event


class _Data(_Env, kw_only=True):
    payload: Any


class _Control(msgspec.Struct, kw_only=True):
    timestamp: _Time
    kind: str
    stream: str = ""
    start_ns: int = 0
    end_ns: int = 0
    epoch: int = 0
    reason: str = ""
    error: str | None = None


class MetricsSample(msgspec.Struct, kw_only=True):
    """A recorded metrics snapshot; ``samples`` = raw histogram values (ns) when present."""

    timestamp: _Time
    snapshot: dict[str, Any]
    samples: dict[str, list[int]] | None = None


@dataclass(frozen=True, slots=True)
class Encoded:
    """One message ready to write: its topic, schema name and JSON bytes."""

    topic: str
    schema: str
    data: bytes


_ENC = msgspec.json.Encoder()
_EVENT_TYPES: tuple[type, ...] = get_args(Event)


def _env(packet: Packet[Any]) -> dict[str, Any]:
    return {
        "timestamp": _time(packet.pts),
        "stream": packet.stream,
        "seq": packet.seq,
        "pts_ns": packet.pts,
        "duration_ns": packet.duration,
        "epoch": packet.epoch,
        "lineage": packet.lineage,
    }


def encode_packet(packet: Packet[Any], *, jpeg_quality: int = 80) -> Encoded:
    """Encode a packet for ``/<packet.stream>``; raises ``TypeError`` for unencodable payloads."""
    topic = "/" + packet.stream
    payload = packet.payload
    if isinstance(payload, AudioChunk):
        pcm = np.clip(np.asarray(payload.samples, dtype=np.float32), -1.0, 1.0)
        s16 = np.round(pcm * 32767.0).astype("<i2")
        rec: msgspec.Struct = _Audio(
            **_env(packet), data=s16.tobytes(), sample_rate=payload.sample_rate
        )
        return Encoded(topic, AUDIO_SCHEMA, _ENC.encode(rec))
    if isinstance(payload, VideoFrame):
        ok, buf = cv2.imencode(".jpg", payload.image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise TypeError(f"stream {packet.stream!r}: frame could not be JPEG-encoded")
        rec = _Image(**_env(packet), frame_id=payload.source, data=buf.tobytes())
        return Encoded(topic, IMAGE_SCHEMA, _ENC.encode(rec))
    if isinstance(payload, _EVENT_TYPES):
        rec = _Event(**_env(packet), event=cast(Event, payload))
        return Encoded(topic, EVENT_SCHEMA, _ENC.encode(rec))
    try:
        data = _ENC.encode(_Data(**_env(packet), payload=payload))
    except (TypeError, msgspec.EncodeError) as error:
        raise TypeError(
            f"stream {packet.stream!r}: cannot record payload of type "
            f"{type(payload).__name__} ({error})"
        ) from error
    return Encoded(topic, DATA_SCHEMA, data)


def encode_control(item: Control, t: Nanos) -> Encoded:
    """Encode a gap / flush / end-of-stream seen at ``t`` (ns) for ``/control``."""
    if isinstance(item, Gap):
        rec = _Control(
            timestamp=_time(t), kind="gap", stream=item.stream, start_ns=item.start,
            end_ns=item.end, reason=item.reason,
        )
    elif isinstance(item, Flush):
        rec = _Control(timestamp=_time(t), kind="flush", epoch=item.epoch, reason=item.reason)
    else:
        rec = _Control(timestamp=_time(t), kind="eos", stream=item.stream, error=item.error)
    return Encoded(CONTROL_TOPIC, CONTROL_SCHEMA, _ENC.encode(rec))


def encode_metrics(
    snapshot: dict[str, Any], t: Nanos, samples: dict[str, list[int]] | None = None
) -> Encoded:
    """Encode a metrics snapshot taken at ``t`` (ns) for ``/metrics``."""
    rec = MetricsSample(timestamp=_time(t), snapshot=snapshot, samples=samples)
    return Encoded(METRICS_TOPIC, METRICS_SCHEMA, _ENC.encode(rec))


def _packet(env: _Env, payload: Any) -> Packet[Any]:
    return Packet(
        stream=env.stream,
        seq=env.seq,
        pts=env.pts_ns,
        duration=env.duration_ns,
        payload=payload,
        epoch=env.epoch,
        lineage=env.lineage,
    )


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    AUDIO_SCHEMA: msgspec.json.Decoder(_Audio),
    IMAGE_SCHEMA: msgspec.json.Decoder(_Image),
    EVENT_SCHEMA: msgspec.json.Decoder(_Event),
    DATA_SCHEMA: msgspec.json.Decoder(_Data),
    CONTROL_SCHEMA: msgspec.json.Decoder(_Control),
    METRICS_SCHEMA: msgspec.json.Decoder(MetricsSample),
}


def decode_message(schema: str, data: bytes) -> Packet[Any] | Control | MetricsSample:
    """Decode one stored message (inverse of the ``encode_*`` functions).

    Raises ``ValueError`` naming the schema for unknown schemas or malformed data.
    """
    decoder = _DECODERS.get(schema)
    if decoder is None:
        raise ValueError(f"unknown schema {schema!r} (known: {sorted(_DECODERS)})")
    try:
        rec = decoder.decode(data)
    except msgspec.DecodeError as error:
        raise ValueError(f"malformed {schema} message: {error}") from error
    if isinstance(rec, _Audio):
        if rec.format != "pcm-s16" or rec.number_of_channels != 1:
            raise ValueError(f"unsupported audio {rec.format} × {rec.number_of_channels} ch")
        s16 = np.frombuffer(rec.data, dtype="<i2")
        samples = (s16.astype(np.float32) / np.float32(32767.0)).astype(np.float32)
        return _packet(rec, AudioChunk(samples, rec.sample_rate))
    if isinstance(rec, _Image):
        image = cv2.imdecode(np.frombuffer(rec.data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"undecodable {rec.format} frame in stream {rec.stream!r}")
        return _packet(rec, VideoFrame(np.asarray(image, dtype=np.uint8), rec.frame_id))
    if isinstance(rec, _Event):
        return _packet(rec, rec.event)
    if isinstance(rec, _Data):
        return _packet(rec, rec.payload)
    if isinstance(rec, _Control):
        if rec.kind == "gap":
            return Gap(rec.stream, rec.start_ns, rec.end_ns, rec.reason)
        if rec.kind == "flush":
            return Flush(rec.epoch, rec.reason)
        return EndOfStream(rec.stream, rec.error)
    assert isinstance(rec, MetricsSample)
    return rec
