"""The markup guard (pure): strip prompt markup a small model copies into its answer.

Very small models (SmolLM2-135M) echo the shape of their prompt: time marks (``[0.4]``),
role prefixes (``User:``, ``Camera:``, ``Assistant:``) and chat-template tokens
(``<|im_end|>``). :class:`MarkupGuard` sits on the stream of text deltas, like
:class:`~streamkit.lm.backend.StopFilter`:

```python
guard = MarkupGuard()
for piece in deltas:
    safe = guard.feed(piece)     # text to show now (may be "")
    if guard.stopped:            # the model began writing the user's next turn
        break
rest = guard.flush()             # what was held at the end
guard.counts                     # {"time_mark": 1, "role": 2, ...}: what was stripped
```

:func:`guard_completion` wraps a backend's :class:`~streamkit.lm.backend.Completion` the same
way (the Responder puts every answer through it and counts ``lm.<backend>.markup_stripped``).

What it does:

- **time marks** ``[12.3]`` / ``[7s]`` anywhere: removed (with the space after them);
- **role prefixes** at a word boundary — ``Assistant:``, ``AI:``, ``Camera:``,
  ``Camera now:``, ``Observation(s):``, ``Vision:`` — removed; ``User:``, ``Human:`` or
  ``System:`` before anything was emitted are removed too, but after some answer text they
  mean the model is inventing the next turn, so the stream **stops** there;
- **chat-template tokens** ``<|...|>``: removed (``<|im_start|>`` stops, like a stop string).

Text that could still become markup (an unclosed ``[12``, a trailing ``Came``) is held back
until it is known, so nothing of a stripped piece is ever emitted; the delay is at most a
few characters. Leading whitespace of the answer and doubled spaces left by a removal are
dropped. Never raises; never reads a clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from streamkit.lm.backend import Completion, filter_completion

__all__ = ["ROLE_NAMES", "MarkupGuard", "guard_completion"]

ROLE_NAMES: tuple[str, ...] = (
    "user",
    "human",
    "system",
    "assistant",
    "ai",
    "camera now",
    "camera",
    "observations",
    "observation",
    "vision",
)
"""Role-like names whose ``Name:`` prefix is markup, longest alternatives first."""

_TURN_ROLES = frozenset({"user", "human", "system"})

_TIME_MARK = re.compile(r"\[\s*\d{1,5}(?:[.,]\d+)?\s*s?\s*\]\s*")
_SPECIAL = re.compile(r"<\|[^|<>]{0,24}\|>\s*")
_ROLE = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(re.escape(n) for n in ROLE_NAMES) + r")\s?:\s*",
    re.IGNORECASE,
)
_PATTERNS: tuple[str, ...] = tuple(f"{n}:" for n in ROLE_NAMES) + tuple(
    f"{n} :" for n in ROLE_NAMES
)
_MAX_BRACKET = 12  # an unclosed "[" is held while it is this short
_MAX_SPECIAL = 28  # an unclosed "<|" likewise


class MarkupGuard:
    """Strips markup from a stream of text pieces (see the module docstring).

    ``counts`` maps what was stripped (``time_mark``, ``role``, ``special``) to how many
    times; ``stripped`` is their sum; ``stopped`` turns True when the model started a new
    turn (``User:`` after answer text, ``<|im_start|>``) or, with ``single_line``, at the
    first line break after some answer text (leading blank lines are dropped: a stop string
    "\n" would have cut such an answer to nothing).
    """

    def __init__(self, *, single_line: bool = False) -> None:
        self.single_line = single_line
        self.counts: dict[str, int] = {}
        self.stopped = False
        self._held = ""
        self._emitted = False
        self._space_pending = False

    @property
    def stripped(self) -> int:
        return sum(self.counts.values())

    def _count(self, kind: str, n: int = 1) -> None:
        if n:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def feed(self, piece: str) -> str:
        """Take the next piece; return the text that is safe to emit now."""
        if self.stopped:
            return ""
        text = self._held + piece
        cut = _safe_end(text)
        self._held = text[cut:]
        return self._clean(text[:cut])

    def flush(self) -> str:
        """End of stream: the held text, cleaned."""
        if self.stopped:
            return ""
        text, self._held = self._held, ""
        return self._clean(text)

    def _clean(self, text: str) -> str:
        if not text:
            return ""
        start = text.find("<|im_start|>")
        if start >= 0:
            text = text[:start]
            self.stopped = True
        text, n = _SPECIAL.subn("", text)
        self._count("special", n)
        text, n = _TIME_MARK.subn("", text)
        self._count("time_mark", n)
        out: list[str] = []
        pos = 0
        for match in _ROLE.finditer(text):
            before = text[pos : match.start()]
            out.append(before)
            role = match.group(1).lower()
            if role in _TURN_ROLES and (self._emitted or "".join(out).strip()):
                self.stopped = True
                self._count("role")
                pos = len(text)
                break
            self._count("role")
            pos = match.end()
        else:
            out.append(text[pos:])
        return self._tidy("".join(out))

    def _tidy(self, text: str) -> str:
        """Drop leading whitespace of the answer and spaces doubled by a removal; with
        ``single_line``, end the answer at its first line break after some text."""
        if not self._emitted:
            text = text.lstrip()
        if self.single_line and "\n" in text:
            text = text[: text.index("\n")].rstrip()
            self.stopped = True
        if self._space_pending and text[:1] in (" ", "\t"):
            text = text.lstrip(" \t")
        text = re.sub(r"[ \t]{2,}", " ", text)
        if text:
            self._emitted = True
            self._space_pending = text[-1] in (" ", "\t")
        if self.stopped:
            text = text.rstrip()
        return text


def _safe_end(text: str) -> int:
    """How much of ``text`` is decided: everything before a possible unfinished markup."""
    end = len(text)
    bracket = text.rfind("[")
    if bracket >= 0 and "]" not in text[bracket:] and end - bracket <= _MAX_BRACKET:
        end = min(end, bracket)
    special = text.rfind("<")
    if special >= 0 and ">" not in text[special:] and end - special <= _MAX_SPECIAL:
        end = min(end, special)
    lower = text.lower()
    keep = 0
    for pattern in _PATTERNS:  # a trailing "Came" or "user " may still get its colon
        for n in range(min(len(pattern) - 1, len(text)), keep, -1):
            before = len(text) - n - 1
            if lower.endswith(pattern[:n]) and (before < 0 or not text[before].isalnum()):
                keep = n
                break
    return min(end, len(text) - keep)


def guard_completion(
    completion: Completion,
    on_strip: Callable[[int], object] | None = None,
    *,
    single_line: bool = False,
) -> Completion:
    """``completion``'s deltas through a :class:`MarkupGuard` (same ``usage``).

    ``on_strip(n)`` is called with the number of markup pieces stripped, once, when the
    stream ends (e.g. a metrics counter's ``inc``). A guard stop ends the stream and closes
    the inner completion (generation stops within one token).
    """

    guard = MarkupGuard(single_line=single_line)

    def counted() -> None:
        if on_strip is not None and guard.stripped:
            on_strip(guard.stripped)

    return filter_completion(completion, guard, counted)
