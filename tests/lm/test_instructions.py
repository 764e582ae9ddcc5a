"""Instructions (the system prompt): AssistantConfig, then per session, the policy kept after."""

from __future__ import annotations

from typing import Any, cast

from streamkit.core.operators import Collector, IterSource
from streamkit.lm import ScriptedBackend
from streamkit.lm.fusion import DEFAULT_POLICY, DEFAULT_SYSTEM_PROMPT
from streamkit.pipelines.assistant import AssistantConfig, Models, build


def _controls(config: AssistantConfig) -> Any:
    # the pipeline is only built, never run: no Whisper model is needed
    models = Models(whisper=cast(Any, None), lm=ScriptedBackend(reply="ok"))
    _pipe, controls = build(config, models, IterSource("source", [], port="audio"), Collector())
    return controls


def test_configured_instructions_replace_the_default_and_keep_the_policy() -> None:
    controls = _controls(AssistantConfig(instructions="You are a patient cooking coach."))
    system = controls._responder.fusion.system_text()
    assert system.startswith("You are a patient cooking coach.")
    assert DEFAULT_SYSTEM_PROMPT not in system
    assert system.endswith(DEFAULT_POLICY)


def test_session_instructions_change_the_prompt_and_empty_restores_the_configured() -> None:
    controls = _controls(AssistantConfig(instructions="You are a pirate."))
    responder = controls._responder
    controls.set_instructions("Answer in French.")
    assert responder.fusion.system_text().startswith("Answer in French.")
    assert responder.fusion.system_message().content.endswith(DEFAULT_POLICY)
    controls.set_instructions("")
    assert responder.fusion.system_text().startswith("You are a pirate.")
    plain = _controls(AssistantConfig())
    plain.set_instructions(None)
    assert plain._responder.fusion.system_text().startswith(DEFAULT_SYSTEM_PROMPT)
