"""The grounding layer as a backend: answer from the facts, or ask the model and verify it.

:class:`GroundedBackend` has the provider shape (:class:`~streamkit.lm.backend.LMBackend`)
and wraps the real one, so the turn handling does not change: it receives the fused request
(:mod:`streamkit.lm.fusion`), reads the question (the last user message), the camera line and
the memory line out of it (:func:`read_request`; both lines are written and parsed by one
module each, round-trip tested), and

- ``mode="facts"`` (the default for the bundled small model): when
  :func:`~streamkit.lm.grounding.decide` answers — a scene question, a remembered fact, an
  honest "I can't tell" — that answer is the completion (one delta, no model call, counted
  by ``on_grounded(reason)``); otherwise the model answers through an
  :class:`~streamkit.lm.grounding_verify.AnswerVerifier` (a sentence naming an unseen colour,
  brand or object is dropped, counted by ``on_verified()``);
- ``mode="model"``: the request goes to the model untouched (a strong ``--lm-url`` model
  that sees the keyframe itself).

The mode is a setting (``AssistantConfig.grounding``, ``--grounding``, ``session.update``
``grounding``); :meth:`GroundedBackend.set_mode` changes it for the next answer. One
wrapper per session (it holds only the mode and the counters' callbacks); the model it wraps
is the process's shared one.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Literal

from streamkit.lm.backend import Completion, LMBackend, LMRequest, Message, Usage
from streamkit.lm.grounding import decide
from streamkit.lm.grounding_facts import CAMERA_PREFIX, SceneFacts, parse_facts
from streamkit.lm.grounding_memory import MEMORY_PREFIX, MemoryFact, parse_memory
from streamkit.lm.grounding_verify import verify_completion

__all__ = ["GroundedBackend", "GroundingMode", "fixed_completion", "read_request"]

GroundingMode = Literal["facts", "model"]
_MARK = re.compile(r"^\s*\[\s*\d+(?:[.,]\d+)?\s*s?\s*\]\s*")  # render_times


def _current(messages: tuple[Message, ...]) -> list[Message]:
    """The messages of the current turn: after the last assistant message (the history and
    worked examples end there), plus the first system message (``facts="system"``)."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    tail = list(messages[last + 1 :])
    if messages and messages[0].role == "system" and messages[0] not in tail:
        tail.insert(0, messages[0])
    return tail


def read_request(request: LMRequest) -> tuple[str, SceneFacts | None, dict[str, MemoryFact]]:
    """``(question, camera facts or None, memory)`` of a fused request."""
    question = ""
    facts: SceneFacts | None = None
    memory: dict[str, MemoryFact] = {}
    for message in _current(request.messages):
        plain: list[str] = []
        for raw in message.content.splitlines():
            line = _MARK.sub("", raw)
            if line.startswith(CAMERA_PREFIX):
                facts = parse_facts(line) or facts
            elif line.startswith(MEMORY_PREFIX):
                memory = parse_memory(line)
            elif message.role == "user":
                plain.append(line)
        if message.role == "user":
            question = " ".join(plain).strip()
    return question, facts, memory


def fixed_completion(text: str) -> Completion:
    """A completion that yields ``text`` at once (no model call, no tokens)."""

    async def run() -> AsyncIterator[str]:
        yield text

    return Completion(run(), Usage())


class GroundedBackend:
    """An :class:`~streamkit.lm.backend.LMBackend` that grounds answers (module docstring).

    Args:
        inner: the model.
        mode: ``facts`` or ``model``.
        on_grounded: called with the reason (``count``, ``memory``, ``unseen`` …) of each
            answer given from the facts.
        on_verified: called when the verifier dropped a sentence of the model's answer.
    """

    def __init__(
        self,
        inner: LMBackend,
        mode: GroundingMode = "facts",
        on_grounded: Callable[[str], object] | None = None,
        on_verified: Callable[[], object] | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name  # metrics stay named after the model
        self.mode: GroundingMode = mode
        self.default_mode: GroundingMode = mode
        self.on_grounded = on_grounded
        self.on_verified = on_verified

    def set_mode(self, mode: GroundingMode | None) -> None:
        """The mode of the next answers (``None``: the one this wrapper was made with)."""
        self.mode = mode if mode is not None else self.default_mode

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def warmup(self) -> None:
        await self.inner.warmup()

    async def prefill(self, request: LMRequest) -> None:
        await self.inner.prefill(request)

    def complete(self, request: LMRequest) -> Completion:
        if self.mode != "facts":
            return self.inner.complete(request)
        question, facts, memory = read_request(request)
        decided = decide(question, facts, memory)
        if decided is not None:
            text, reason = decided
            if self.on_grounded is not None:
                self.on_grounded(reason)
            return fixed_completion(text)
        allowed = [question, *(f.sentence for f in memory.values())]
        if facts is not None:
            allowed.append(facts.words())
        return verify_completion(self.inner.complete(request), allowed, self.on_verified)
