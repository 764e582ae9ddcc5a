"""The assistant's voice: where the TTS stage sits in the assistant graph, and what it changes.

::

    responder ─response (BLOCK)─► tts ─(BLOCK)─► tee ─► merge  (text passes through at once)
    asr tee ─speech (SpeechStarted only)─┘        └─► echo gate (what the voice plays)
    source audio ─► tee ─► asr ─► echo gate ─► asr tee      (utterances that are our own
                     └──────────────┘ (mic)                   echo never reach anyone)

:func:`add_voice` wires a :class:`~streamkit.tts.TtsStage` between the responder and the event
merge; :func:`truncate_history` is its ``on_heard``: when the voice was cut, the turn the
responder keeps gets the answer as heard (the Realtime API's ``conversation.item.truncate``),
so the next prompt does not claim the assistant said what the user never heard.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

from streamkit.core.edge import Edge, Policy
from streamkit.core.events import ResponseAudio, ResponseAudioDone
from streamkit.core.operators import Tee
from streamkit.core.pipeline import Pipeline
from streamkit.lm.fusion import Turn
from streamkit.tts import TtsConfig, TTSEngine, TtsStage
from streamkit.tts.echo import EchoGateConfig
from streamkit.tts.echo_stage import EchoGate

__all__ = ["add_echo_gate", "add_voice", "copy_edge", "truncate_history"]


def copy_edge(pipe: Pipeline, name: str, edge: Edge[Any], capacity: int = 256) -> tuple[
        Edge[Any], Edge[Any]]:
    """Tee ``edge`` into ``(main, copy)``: ``main`` BLOCK (nothing lost on the real path),
    ``copy`` DROP_OLDEST (a side reader that falls behind loses the oldest, counted, and never
    holds up the main path)."""
    ports = {"main": pipe.edge(f"{name}.main", capacity, Policy.BLOCK),
             "copy": pipe.edge(f"{name}.copy", capacity, Policy.DROP_OLDEST)}
    pipe.add(Tee(f"{name}.tee", list(ports)), {"in": edge}, ports)
    return ports["main"], ports["copy"]


def add_echo_gate(
    pipe: Pipeline,
    config: EchoGateConfig,
    events: Edge[Any],
    mic: Edge[Any],
    reference: Edge[Any],
) -> Edge[Any]:
    """The echo gate on the ASR's ``events`` (hearing ``mic``, knowing ``reference``); returns
    the gated events edge."""
    out = pipe.edge("echo.out", 64, Policy.BLOCK)
    pipe.add(EchoGate(config), {"in": events, "mic": mic, "reference": reference},
             {"out": out})
    return out


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
    reference: Edge[Any] | None = None,
) -> tuple[TtsStage, Edge[Any]]:
    """Add the TTS stage reading ``response`` (and ``speech`` for barge-in); returns the stage
    and its output edge (for the merge). ``reference`` (an edge to the echo gate) also gets
    what the voice plays."""
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
    if reference is None:
        return stage, out
    merge = pipe.edge("tts.merge", 64, Policy.BLOCK)
    only_audio = {"echo": lambda p: isinstance(p.payload, ResponseAudio)}
    pipe.add(Tee("tts.tee", ["merge", "echo"], accept=only_audio), {"in": out},
             {"merge": merge, "echo": reference})
    return stage, merge
