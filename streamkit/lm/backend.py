"""The language-model backend protocol: an async, cancellable stream of text deltas.

A backend is loaded once per process and shared by every session; it serialises its model
calls itself (a :class:`~streamkit.core.compute.ModelSlot`: one blocking call at a time). A
request is a list of chat :class:`Message` objects (the fused context, see
:mod:`streamkit.lm.fusion`); :meth:`LMBackend.complete` returns a :class:`Completion`:

```python
completion = backend.complete(request)
async for delta in completion:      # text pieces as they are generated
    ...
completion.usage                    # prompt/completion token counts (final once done)
await completion.aclose()           # stop early (also what task cancellation does)
```

Cancelling the task that iterates (or calling ``aclose``) stops generation within one
token: the model call in flight finishes in its thread and its result is discarded.

``prefill(request)`` is optional work ahead of time: evaluate the prompt now (while the user
is still speaking) so that when :meth:`complete` is called with a prompt that shares a
prefix, only the tail remains. Backends without a prompt cache make it a no-op.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from streamkit.core.streams import GeneratorStream

__all__ = [
    "BackendUnavailable",
    "Completion",
    "DeltaFilter",
    "LMBackend",
    "LMRequest",
    "Message",
    "Role",
    "StopFilter",
    "TokenCharge",
    "TokenCounter",
    "Usage",
    "approx_token_count",
    "common_prefix",
    "filter_completion",
]

Role = Literal["system", "user", "assistant"]

TokenCounter = Callable[[str], int]
"""Counts the tokens of a piece of text (the backend's tokenizer, or an estimate)."""


class BackendUnavailable(RuntimeError):
    """The model or runtime is missing or unreachable; the message says what to install/pass."""


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. ``image_jpeg`` (optional) is sent to vision-language backends."""

    role: Role
    content: str
    image_jpeg: bytes | None = None


@dataclass(frozen=True, slots=True)
class LMRequest:
    """What to generate from.

    Attributes:
        messages: the conversation, system message first.
        max_tokens: cap on generated tokens.
        temperature: 0 = greedy (deterministic).
        stop: extra stop strings (the chat template's end-of-turn is always a stop).
    """

    messages: tuple[Message, ...]
    max_tokens: int = 128
    temperature: float = 0.0
    stop: tuple[str, ...] = ()


@dataclass(slots=True)
class Usage:
    """Token counts of one completion (``prompt_cached``: prompt tokens reused from cache)
    and ``compute_ns``: the model's CPU time spent on it so far (0 where not measured)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_cached: int = 0
    compute_ns: int = 0


@dataclass(frozen=True, slots=True)
class TokenCharge:
    """A local model's fixed cost on a virtual clock, by the work of each call: ``prompt_ns``
    per prompt token evaluated (the uncached rest), ``token_ns`` per token generated. Replays
    that charge this instead of measured CPU time are bit-identical on a loaded machine."""

    prompt_ns: int
    token_ns: int

    def cost(self, prompt_tokens: int, generated: int) -> int:
        """Nanoseconds charged for evaluating ``prompt_tokens`` and generating ``generated``."""
        return prompt_tokens * self.prompt_ns + generated * self.token_ns


@dataclass(slots=True)
class Completion(GeneratorStream[str]):
    """A running generation: async-iterate for text deltas; ``usage`` fills in as it runs.

    Wraps the backend's async generator; ``aclose`` stops it (idempotent).
    """

    usage: Usage = field(default_factory=Usage)


class DeltaFilter(Protocol):
    """A pure filter over an answer's text deltas (the markup guard, the answer verifier):
    ``feed`` returns what may be released now, ``flush`` the rest at the end; ``stopped``
    turns True when the answer must end here."""

    @property
    def stopped(self) -> bool: ...

    def feed(self, delta: str) -> str: ...

    def flush(self) -> str: ...


def filter_completion(
    completion: Completion, delta_filter: DeltaFilter, on_end: Callable[[], object] | None = None
) -> Completion:
    """``completion``'s deltas through ``delta_filter`` (same ``usage``). A filter stop ends
    the stream and closes the inner completion (generation stops within one token);
    ``on_end()`` runs once when the stream ends, however it ends."""

    async def run() -> AsyncIterator[str]:
        try:
            async for piece in completion:
                safe = delta_filter.feed(piece)
                if safe:
                    yield safe
                if delta_filter.stopped:
                    break
            rest = delta_filter.flush()
            if rest:
                yield rest
        finally:
            await completion.aclose()
            if on_end is not None:
                on_end()

    return Completion(run(), completion.usage)


@runtime_checkable
class LMBackend(Protocol):
    """A language model that streams text. Shared by sessions; safe to call concurrently
    from tasks of one event loop (calls are serialised inside)."""

    name: str

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` with this backend's tokenizer (or a close estimate)."""
        ...

    async def warmup(self) -> None:
        """Load and exercise the model once so the first real request is not cold."""
        ...

    async def prefill(self, request: LMRequest) -> None:
        """Evaluate ``request``'s prompt ahead of time (no-op where unsupported)."""
        ...

    def complete(self, request: LMRequest) -> Completion:
        """Start generating; see the module docstring."""
        ...


def common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    """How many leading ``tokens`` equal ``cached`` (the KV-cache reuse of a new prompt)."""
    n = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        n += 1
    return n


def approx_token_count(text: str) -> int:
    """A tokenizer-free estimate (≈ 4 characters per token), for budgets without a tokenizer."""
    return (len(text) + 3) // 4


class StopFilter:
    """Cuts a stream of text pieces at the first stop string (pure).

    Text that could be the start of a stop string is held back until it is known not to be
    one, so no part of a stop string is ever emitted. ``feed`` returns the text safe to emit;
    ``stopped`` turns True at a stop; ``flush`` returns what was held at the end.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.stopped = False
        self._held = ""

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        text = self._held + piece
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = 0  # longest suffix of text that is a proper prefix of a stop string
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), keep, -1):
                if text.endswith(stop[:n]):
                    keep = n
                    break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held
