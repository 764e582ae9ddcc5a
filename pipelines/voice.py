"""The assistant's voice: where the TTS stage sits in the assistant graph, and what it changes.

::

    responder ─response (BLOCK)─► tts ─(BLOCK)─► merge      (text passes through at once)
    asr tee ─speech (SpeechStarted only)─┘                   (barge-in stops the voice)

:func:`add_voice` wires a :class:`~streamkit.tts.TtsStage` between the responder and the event
merge; :func:`truncate_history` is its ``on_heard``: when the voice was cut, the turn the
responder keeps gets the answer as heard (the Realtime API's ``conversation.item.truncate``),
so the next prompt does not claim the assistant said what the user never heard.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

from streamkit.edge import Edge, Policy
from streamkit.events import ResponseAudioDone
from streamkit.lm.fusion import Turn
from streamkit.pipeline import Pipeline
from streamkit.tts import TtsConfig, TTSEngine, TtsStage

__all__ = ["add_voice", "truncate_history"]


def truncate_history(history: deque[Turn], done: ResponseAudioDone, answer: str) -> bool:
    """Replace the answer of the turn that holds ``answer`` with what was heard (``done``),
    when the voice was cancelled; returns whether a turn changed."""
    if not done.cancelled:
        return False
    spoken = answer.strip()
    for i in range(len(history) - 1, -1, -1):
        turn = history[i]
        if turn.assistant == spoken:
            heard = done.text.strip()
            if heard == spoken:
                return False
            history[i] = replace(turn, assistant=heard + " …" if heard else "…")
            return True
    return False


def add_voice(
    pipe: Pipeline,
    engine: TTSEngine,
    config: TtsConfig,
    response: Edge[Any],
    speech: Edge[Any] | None,
    history: deque[Turn] | None,
) -> tuple[TtsStage, Edge[Any]]:
    """Add the TTS stage reading ``response`` (and ``speech`` for barge-in); returns the stage
    and its output edge (for the merge)."""
    on_heard = None
    if history is not None:
        kept = history

        def on_heard(done: ResponseAudioDone, answer: str) -> None:
            truncate_history(kept, done, answer)

    stage = TtsStage(engine, config, on_heard)
    out = pipe.edge("tts.out", 64, Policy.BLOCK)
    inputs = {"response": response}
    if speech is not None:
        inputs["speech"] = speech
    pipe.add(stage, inputs, {"out": out})
    return stage, out
