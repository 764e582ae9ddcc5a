"""``Models.warmup(config)``: the server warms the audio models, and the prompt prefix its
sessions will share."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
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


class _Heard:
    """Whisper and Smart Turn stand-ins that record the audio they are given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def decode_window(self, audio: npt.NDArray[np.float32]) -> None:
        self.calls.append(("decode", len(audio)))

    def predict(self, audio: npt.NDArray[np.float32]) -> float:
        self.calls.append(("predict", len(audio)))
        return 0.0


@pytest.mark.looptime
async def test_warmup_runs_the_audio_models_once_before_the_first_turn() -> None:
    heard = _Heard()
    models = Models(whisper=heard, lm=None, turn=heard)  # type: ignore[arg-type]
    await models.warmup()
    assert heard.calls == [("decode", 16_000), ("predict", 16_000)]  # one second each
