"""Strict checks of Realtime server events against the stock ``openai`` SDK's own models.

The SDK parses server events leniently (``construct_type_unchecked``: an unknown type or a
missing field still "parses"), so every event is validated here with pydantic's strict mode
against the model its ``type`` names in the SDK's ``RealtimeServerEvent`` union, and its
top-level fields must all be fields of that model (a misspelt field fails).
"""

from __future__ import annotations

from typing import Any

import pytest

openai_types = pytest.importorskip("openai.types.realtime")
pydantic = pytest.importorskip("pydantic")

__all__ = ["MODELS", "validate"]


def _models() -> dict[str, Any]:
    import typing

    from openai.types.realtime.realtime_server_event import RealtimeServerEvent

    union = typing.get_args(RealtimeServerEvent)[0]
    models: dict[str, Any] = {}
    for model in typing.get_args(union):
        literal = model.model_fields["type"].annotation
        for name in typing.get_args(literal):
            models[name] = model
    return models


MODELS = _models()


def validate(event: dict[str, Any]) -> Any:
    """The SDK model instance for ``event`` (raises AssertionError / ValidationError)."""
    kind = event.get("type")
    assert kind in MODELS, f"{kind!r} is not a Realtime server event type"
    model = MODELS[kind]
    instance = model.model_validate(event, strict=True)
    unknown = set(event) - set(model.model_fields)
    assert not unknown, f"{kind}: fields the SDK does not know: {sorted(unknown)}"
    return instance
