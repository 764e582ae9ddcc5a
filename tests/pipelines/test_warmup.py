"""``Models.warmup(config)``: the server warms the prompt prefix its sessions will share."""

from __future__ import annotations

import pytest

from streamkit.lm import Responder, ScriptedBackend
from streamkit.pipelines.assistant import AssistantConfig, Models, answering


@pytest.mark.looptime
async def test_warmup_prefills_the_prefix_every_session_starts_with() -> None:
    backend = ScriptedBackend()
    config = AssistantConfig(instructions="You are Ada. Answer in one short sentence.")
    models = Models(whisper=None, lm=backend)  # type: ignore[arg-type]  # the LM alone warms
    await models.warmup(config)
    [prefill] = backend.prefills
    session = Responder(backend, answering(config))  # what a session's responder renders
    assert prefill.messages == session.fusion.prefix_messages()
    assert prefill.messages[0].content.startswith("You are Ada.")
    plain = ScriptedBackend()
    await Models(whisper=None, lm=plain).warmup()  # type: ignore[arg-type]
    assert plain.prefills == []  # no config: the model alone
