"""transport/controls.py: settings reach the pipeline's setters by name; missing ones are
ignored; a refused turn policy is an error value; conversation commands dispatch by type."""

from __future__ import annotations

from typing import Any

import msgspec

from streamkit.transport.commands import AddText, ClearInput, Respond
from streamkit.transport.controls import (
    apply_settings,
    conversation,
    initial_settings,
    set_turn_detection,
)
from streamkit.transport.protocol import ProtocolError, SessionConfig


class Controls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def set_output_audio(self, on: bool) -> None:
        self.calls.append(("output_audio", on))

    def set_instructions(self, text: str | None) -> None:
        self.calls.append(("instructions", text))

    def set_turn_detection(self, policy: str) -> None:
        if policy == "smart":
            raise RuntimeError("no Smart Turn model")
        self.calls.append(("turn_detection", policy))

    async def add_text(self, text: str, role: str) -> str:
        return f"{role}:{text}"


def test_settings_reach_the_setters_the_pipeline_has() -> None:
    controls = Controls()
    config = msgspec.structs.replace(SessionConfig(), instructions="Be brief.", grounding="facts")
    apply_settings(controls, config, {"instructions", "grounding", "partials"})
    assert controls.calls == [("instructions", "Be brief.")]  # no set_grounding: ignored
    apply_settings(None, config, {"output_audio"})  # no pipeline yet: nothing to do


def test_a_new_pipeline_gets_output_audio_and_the_settings_that_are_set() -> None:
    assert initial_settings(SessionConfig()) == ["output_audio"]
    config = msgspec.structs.replace(SessionConfig(), instructions="x")
    assert initial_settings(config) == ["output_audio", "instructions"]
    controls = Controls()
    apply_settings(controls, config, initial_settings(config))
    assert controls.calls == [("output_audio", False), ("instructions", "x")]


def test_a_refused_turn_policy_is_an_error_value() -> None:
    controls = Controls()
    assert set_turn_detection(controls, "vad") is None
    problem = set_turn_detection(controls, "smart")
    assert isinstance(problem, ProtocolError)
    assert problem.code == "invalid_message"
    assert set_turn_detection(object(), "smart") is None  # no turn-taking: ignored


async def test_conversation_commands_dispatch_or_are_unsupported() -> None:
    controls = Controls()
    assert await conversation(controls, AddText("hi", "user")) == "user:hi"
    missing = await conversation(controls, ClearInput(()))
    assert isinstance(missing, ProtocolError)
    assert missing.code == "unsupported_event"
    respond = await conversation(controls, Respond((), None, None))
    assert isinstance(respond, ProtocolError)
    assert "no Respond" in respond.message
