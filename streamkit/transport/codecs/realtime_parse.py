"""Checks of Realtime client events (pure): the event itself, an append's audio, an item to
create or truncate, response parameters, and what the session settings mean for turns.

Each parser returns the parsed value or a :data:`~streamkit.transport.codecs.realtime_shapes
.Problem` ``(code, param, message)`` for the codec's one ``error``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from streamkit.transport.codecs.realtime_shapes import (
    AUDIO_RATE,
    MAX_JSON_DEPTH,
    MAX_NUMBER_CHARS,
    MIN_COMMIT_SAMPLES,
    SEMANTIC_SILENCE_MS,
    Problem,
)
from streamkit.transport.commands import ConfigureTurns
from streamkit.transport.limits import json_excess

__all__ = [
    "NewItem",
    "ResponseParams",
    "cancel_problem",
    "check_truncate",
    "commit_problem",
    "data_uri",
    "parse_append",
    "parse_event",
    "parse_item",
    "parse_response",
    "session_turns",
]

_decoder = msgspec.json.Decoder()


def parse_event(raw: bytes, max_bytes: int) -> dict[str, Any] | Problem:
    """One text frame's UTF-8 bytes → the client event object (not yet its fields)."""
    if len(raw) > max_bytes:
        return ("message_too_large", None, f"event of {len(raw)} bytes > {max_bytes}")
    excess = json_excess(raw, MAX_JSON_DEPTH, MAX_NUMBER_CHARS)  # the parser recurses
    if excess is not None:
        return ("invalid_json", None, excess)
    try:
        value = _decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as error:
        return ("invalid_json", None, f"not valid JSON: {error}"[:300])
    if not isinstance(value, dict):
        return ("invalid_json", None, f"expected a JSON object, got {type(value).__name__}")
    return value


def parse_append(audio: Any) -> npt.NDArray[np.float32] | Problem | None:
    """``input_audio_buffer.append``'s ``audio`` (base64 PCM16) → float32 samples in [-1, 1]
    (None: no samples, nothing to do)."""
    if not isinstance(audio, str):
        return ("invalid_value", "audio", "append needs 'audio' (base64 PCM16)")
    try:
        pcm = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        return ("invalid_value", "audio", "'audio' is not valid base64")
    if len(pcm) % 2:
        return ("invalid_value", "audio", f"PCM16 audio of {len(pcm)} bytes (odd)")
    if not pcm:
        return None
    samples: npt.NDArray[np.float32] = np.frombuffer(pcm, dtype="<i2").astype(
        np.float32
    ) / np.float32(32768.0)
    return samples


def commit_problem(buffered: int) -> Problem | None:
    """Why ``input_audio_buffer.commit`` of ``buffered`` samples is refused (None: it is not)."""
    if buffered >= MIN_COMMIT_SAMPLES:
        return None
    ms = buffered * 1000 // AUDIO_RATE
    return (
        "input_audio_buffer_commit_empty",
        None,
        f"buffer too small: {ms} ms of audio; at least 100 ms is needed",
    )


def cancel_problem(active: str | None, wanted: Any) -> Problem | None:
    """Why ``response.cancel`` of ``wanted`` (an id, or absent) is refused while ``active``
    (the active response's id, or None) runs (None: it is not)."""
    if active is not None and (not isinstance(wanted, str) or wanted == active):
        return None
    message = (
        "there is no active response to cancel"
        if active is None
        else f"response {wanted!r} is not the active one"
    )
    return ("response_cancel_not_active", None, message)


def check_truncate(item: dict[str, Any] | None, item_id: Any, end_ms: Any) -> Problem | None:
    """Why ``conversation.item.truncate`` of ``item`` (the stored item ``item_id``, or None)
    at ``audio_end_ms`` = ``end_ms`` cannot be done (None: it can)."""
    content = item.get("content") if item is not None else None
    if item is None or item.get("role") != "assistant":
        return ("invalid_value", "item_id", f"no assistant item {str(item_id)[:80]!r}")
    if content and content[0].get("type") != "output_audio":
        return ("invalid_value", "item_id", "only a spoken (audio) item can be truncated")
    if not isinstance(end_ms, int) or isinstance(end_ms, bool) or end_ms < 0:
        return ("invalid_value", "audio_end_ms", "audio_end_ms must be an integer ≥ 0")
    return None


def session_turns(session: dict[str, Any]) -> ConfigureTurns:
    """The :class:`ConfigureTurns` command a (checked) session object means: ``server_vad``
    takes its ``silence_duration_ms`` (500 ms when absent) as the longest wait,
    ``semantic_vad`` its ``eagerness`` (:data:`SEMANTIC_SILENCE_MS`)."""
    td: dict[str, Any] | None = session["audio"]["input"].get("turn_detection")
    tokens = session.get("max_output_tokens")
    instructions = session.get("instructions") or None
    silence: int | None = int((td or {}).get("silence_duration_ms") or 500)
    if td is not None and td.get("type") == "semantic_vad":
        silence = SEMANTIC_SILENCE_MS[td.get("eagerness") or "auto"]
    return ConfigureTurns(
        auto_answer=td is not None and bool(td.get("create_response", True)),
        silence_ms=silence,
        threshold=float((td or {}).get("threshold") or 0.5),
        instructions=instructions,
        max_tokens=tokens if isinstance(tokens, int) else None,
        audio_out="audio" in session.get("output_modalities", ()),
    )


@dataclass(frozen=True, slots=True)
class NewItem:
    """A checked ``conversation.item.create`` item: its text and decoded images."""

    id: str | None
    role: str
    content: list[Any]
    texts: tuple[str, ...]
    images: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ResponseParams:
    """The ``response`` object of ``response.create`` that this server honours."""

    instructions: str | None
    max_tokens: int | None


def data_uri(value: Any) -> bytes | None:
    """The bytes of a ``data:image/…;base64,…`` URI (None: not one)."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        return None
    head, _, body = value.partition(",")
    if not head.endswith(";base64") or not body:
        return None
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_item(item: Any) -> NewItem | Problem:
    """A user (or system) message with ``input_text`` / ``input_image`` parts."""
    if not isinstance(item, dict) or item.get("type") != "message":
        return ("invalid_value", "item.type", "item must be a message object")
    role, content = item.get("role"), item.get("content")
    if role not in ("user", "system", "assistant"):
        return ("invalid_value", "item.role", f"item role {role!r}: user or system")
    if role == "assistant":
        return ("unsupported_value", "item.role", "assistant items are not accepted here")
    if not isinstance(content, list) or not content:
        return ("invalid_value", "item.content", "item.content must be a non-empty list")
    texts: list[str] = []
    images: list[bytes] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "input_text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_image" and role == "user":
            image = data_uri(part.get("image_url"))
            if image is None:
                return (
                    "invalid_value",
                    "item.content.image_url",
                    "input_image needs image_url as a base64 data URI (JPEG or PNG)",
                )
            images.append(image)
        else:
            return ("invalid_value", "item.content.type", f"unsupported content part {kind!r}")
    item_id = item.get("id")
    given = item_id if isinstance(item_id, str) and item_id else None
    return NewItem(given, str(role), content, tuple(texts), tuple(images))


def parse_response(params: Any, audio_out: bool) -> ResponseParams | Problem:
    """``response.create``'s optional ``response`` object (``audio_out``: the server speaks)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return ("invalid_value", "response", "response must be an object")
    for name in ("tools", "input"):
        if params.get(name):
            return ("unsupported_value", f"response.{name}", f"response.{name} is not supported")
    if params.get("conversation", "auto") != "auto":
        return (
            "unsupported_value",
            "response.conversation",
            "only conversation 'auto' is supported",
        )
    modalities = params.get("output_modalities")
    if modalities is not None and (
        not isinstance(modalities, list) or ("audio" in modalities and not audio_out)
    ):
        return (
            "unsupported_value",
            "response.output_modalities",
            "this server answers in text only",
        )
    tokens = params.get("max_output_tokens")
    instructions = params.get("instructions")
    return ResponseParams(
        instructions if isinstance(instructions, str) and instructions else None,
        tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
    )
