"""Checks of Realtime client event bodies (pure): an item to create, response parameters.

Each parser returns the parsed value or a :data:`~streamkit.transport.codecs.realtime_shapes
.Problem` ``(code, param, message)`` for the codec's one ``error``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from streamkit.transport.codecs.realtime_shapes import Problem

__all__ = ["NewItem", "ResponseParams", "data_uri", "parse_item", "parse_response"]


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
