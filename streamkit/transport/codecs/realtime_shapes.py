"""OpenAI Realtime (GA) shapes: the session object, its merge and checks, items (pure).

The session configuration is kept as the JSON object the client sees (the shape of the SDK's
``RealtimeSessionCreateRequest``), so ``session.updated`` echoes exactly what is in force.
:func:`merge` applies a ``session.update`` recursively (a ``null`` clears a field, an
omitted one keeps its value); :func:`check` says why a merged session cannot be served, as
``(code, param, message)``. Item builders return the item shapes of ``conversation.item.*``
and ``response.output_item.*`` events. Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import copy
from typing import Any, Final

__all__ = [
    "AUDIO_RATE",
    "CLIENT_EVENTS",
    "DEFAULT_SESSION",
    "MAX_EVENT_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_CHARS",
    "MIN_COMMIT_SAMPLES",
    "UNSUPPORTED_EVENTS",
    "Problem",
    "assistant_item",
    "check",
    "merge",
    "user_audio_item",
    "user_item",
]

AUDIO_RATE: Final = 24_000
"""Input (and output) PCM rate on this endpoint (Hz); the ASR's 16 kHz stays inside."""

Problem = tuple[str, str | None, str]
"""``(code, param, message)`` of an ``error`` event."""

CLIENT_EVENTS: Final = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "response.create",
    "response.cancel",
)
UNSUPPORTED_EVENTS: Final = (
    "conversation.item.delete",
    "output_audio_buffer.clear",
    "transcription_session.update",
)
MAX_EVENT_BYTES: Final = 1 << 20
"""Largest client event accepted (1 MiB: a 1 s append is ~64 KB of JSON)."""
MAX_JSON_DEPTH: Final = 64
"""Deeper client events are ``invalid_json`` (tool parameter schemas nest; 64 is ample)."""
MAX_NUMBER_CHARS: Final = 64
MIN_COMMIT_SAMPLES: Final = AUDIO_RATE // 10
"""The shortest buffer ``input_audio_buffer.commit`` accepts (100 ms, OpenAI's threshold)."""

_SERVER_VAD: Final[dict[str, Any]] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}

DEFAULT_SESSION: Final[dict[str, Any]] = {
    "object": "realtime.session",
    "type": "realtime",
    "model": "streamkit",
    "output_modalities": ["text"],
    "instructions": "",
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": AUDIO_RATE},
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": _SERVER_VAD,
        },
        "output": {
            "format": {"type": "audio/pcm", "rate": AUDIO_RATE},
            "voice": "alloy",
            "speed": 1.0,
        },
    },
}
"""The effective session before any ``session.update`` (``id``/``model`` are filled in)."""


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in recursively (a new dict; inputs are not changed).

    A dict merges into a dict; anything else (``null``, lists, scalars) replaces. A
    ``turn_detection`` object that replaces ``null`` starts from the server-VAD defaults.
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = merge(current, value)
        elif isinstance(value, dict) and key == "turn_detection":
            out[key] = merge(_SERVER_VAD, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


SEMANTIC_SILENCE_MS: Final[dict[str, int | None]] = {
    "high": 500,
    "medium": None,
    "auto": None,
    "low": 2000,
}
"""``semantic_vad`` eagerness → the longest silence a turn waits (ms; None: the server's end
of turn policy as it is — Smart Turn and the words decide, 800 ms at most by default).
``high``: server VAD's 500 ms default; ``low``: 2 s, the unfinished-words hold's wait."""


def check(session: dict[str, Any], audio_out: bool = False) -> Problem | None:
    """Why the merged ``session`` cannot be served (None: it can).

    ``audio_out``: the server can speak its answers (``output_modalities`` may hold
    ``"audio"``).
    """
    if session.get("type") != "realtime":
        return ("invalid_value", "session.type", "session.type must be 'realtime'")
    modalities = session.get("output_modalities")
    if (
        not isinstance(modalities, list)
        or not modalities
        or not all(m in ("text", "audio") for m in modalities)
    ):
        return ("invalid_value", "session.output_modalities", "expected ['text'] or ['audio']")
    if "audio" in modalities and not audio_out:
        return (
            "unsupported_value",
            "session.output_modalities",
            "this server answers in text only: use ['text']",
        )
    if not isinstance(session.get("instructions"), str):
        return ("invalid_value", "session.instructions", "instructions must be a string")
    tokens = session.get("max_output_tokens")
    if tokens != "inf" and not (isinstance(tokens, int) and 1 <= tokens <= 4096):
        return ("invalid_value", "session.max_output_tokens", "an integer 1-4096 or 'inf'")
    if session.get("tools"):
        return ("unsupported_value", "session.tools", "tools (function calling) are not supported")
    audio = session.get("audio")
    audio_in = audio.get("input") if isinstance(audio, dict) else None
    if not isinstance(audio_in, dict):
        return ("invalid_value", "session.audio.input", "expected an object")
    fmt = audio_in.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") != "audio/pcm":
        return (
            "unsupported_value",
            "session.audio.input.format",
            "only audio/pcm (24 kHz, 16-bit mono) input is supported",
        )
    if fmt.get("rate", AUDIO_RATE) != AUDIO_RATE:
        return ("unsupported_value", "session.audio.input.format.rate", "rate must be 24000")
    transcription = audio_in.get("transcription")
    if transcription is not None and not isinstance(transcription, dict):
        return ("invalid_value", "session.audio.input.transcription", "an object or null")
    turns = audio_in.get("turn_detection")
    if turns is not None:
        if not isinstance(turns, dict) or turns.get("type") not in ("server_vad", "semantic_vad"):
            return (
                "invalid_value",
                "session.audio.input.turn_detection.type",
                "turn_detection.type must be 'server_vad' or 'semantic_vad' (or null: manual)",
            )
        eagerness = turns.get("eagerness")
        if eagerness is not None and eagerness not in SEMANTIC_SILENCE_MS:
            return (
                "invalid_value",
                "session.audio.input.turn_detection.eagerness",
                "eagerness must be 'low', 'medium', 'high' or 'auto'",
            )
        for name in ("threshold", "prefix_padding_ms", "silence_duration_ms"):
            value = turns.get(name)
            if value is not None and (not _number(value) or value < 0):
                return (
                    "invalid_value",
                    f"session.audio.input.turn_detection.{name}",
                    f"{name} must be a number ≥ 0",
                )
    return None


def user_item(
    item_id: str, content: list[dict[str, Any]], status: str = "completed"
) -> dict[str, Any]:
    """A user message item (``content``: ``input_text`` / ``input_audio`` / ``input_image``)."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": status,
        "content": content,
    }


def user_audio_item(item_id: str, transcript: str | None) -> dict[str, Any]:
    """A committed audio item (``transcript`` None until transcribed)."""
    return user_item(item_id, [{"type": "input_audio", "transcript": transcript}])


def assistant_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    """The assistant message of a response; ``text`` None: no content part yet."""
    content = [] if text is None else [{"type": "output_text", "text": text}]
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }
