"""The answer verifier (pure): a sentence about the scene may only name what was seen or said.

A small model asked "say hello" may add "You look great in your red shirt." with no camera at
all. :class:`AnswerVerifier` sits on the stream of text deltas (like
:class:`~streamkit.lm.guard.MarkupGuard`): a sentence that talks about the scene or the user
(``I see``, ``your``, ``wearing``, ``holding``, ``camera`` …) and names a colour, brand or
object word (:data:`NAMED`) that is in none of the ``allowed`` texts (the camera facts, what the
user said, the memory line) is not released. If nothing was released yet the answer becomes
"I can't tell."; otherwise the answer ends before that sentence. Sentences without such a cue
pass as they stream ("The sky is blue." is knowledge, not a claim about the camera), so the
first token is not held back on ordinary answers; a sentence about the user ("You…") or one
that reaches a cue ("I see…") is held to its end (a few tokens).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from streamkit.lm.backend import Completion, filter_completion

__all__ = ["NAMED", "AnswerVerifier", "verify_completion"]

_COLOURS = (
    "red orange yellow green blue purple violet pink brown black white grey gray silver gold "
    "golden beige navy cyan teal turquoise maroon magenta lavender indigo crimson"
)
_BRANDS = (
    "samsung apple iphone ipad rolex casio omega seiko nike adidas puma gucci prada sony google "
    "pixel huawei xiaomi nokia lg dell hp lenovo microsoft canon nikon rayban oakley timex "
    "fossil swatch cartier armani levis zara starbucks cocacola pepsi tesla bmw toyota"
)
_OBJECTS = (
    "phone smartphone cup mug book pen pencil watch bottle glass glasses hat cap flower flowers "
    "rose keys key bag ball laptop computer remote knife fork spoon umbrella wallet ring toy "
    "guitar banana apple sandwich coffee tea microphone headphones tablet newspaper magazine "
    "box card camera cat dog bird car shirt jacket tie scarf necklace bracelet earrings lamp "
    "chair table plant plants picture painting poster window door"
)
NAMED = frozenset((_COLOURS + " " + _BRANDS + " " + _OBJECTS).split())
"""Words that claim something seen: colours, brands, objects."""

_CUE = re.compile(
    r"\b(?:i see|i can see|i notice|wearing|wear|holding|hold|in your|on your|your|you look|"
    r"you have|camera|in front of you|behind you|picture|image)\b",
    re.IGNORECASE,
)
_CLAIMING = re.compile(
    r"^\s*(?:(?:you|your|you're|yours)\b|i(?:\s+(?:can|see|notice|spot|think))?\s*$)",
    re.IGNORECASE,
)
"""A sentence that starts with a claim about the user ("You…") is held to its end; one that
starts "I" only until the next word shows it is not "I see…" (one token)."""
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_CANT_TELL = "I can't tell."


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and word[:-1] in NAMED else word


class AnswerVerifier:
    """Holds back sentences that name unseen things (see the module docstring).

    ``replaced`` counts the sentences dropped (0 or 1: the answer ends at the first one);
    ``stopped`` turns True there.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = {_stem(w) for text in allowed for w in _words(text)}
        self.replaced = 0
        self.stopped = False
        self._released = ""  # of the current sentence
        self._any = False
        self._held = ""

    def invented(self, sentence: str) -> list[str]:
        """The named words of a cued ``sentence`` that nothing allowed contains."""
        if _CUE.search(sentence) is None:
            return []
        return [w for w in _words(sentence) if _stem(w) in NAMED and _stem(w) not in self.allowed]

    def feed(self, piece: str) -> str:
        """Take the next piece; return the text safe to emit now."""
        if self.stopped:
            return ""
        self._held += piece
        out: list[str] = []
        while (end := _SENTENCE_END.search(self._held)) is not None:
            sentence, self._held = self._held[: end.end()], self._held[end.end() :]
            if not self._accept(sentence, out):
                return "".join(out)
        current = self._released + self._held
        if _CUE.search(current) is None and _CLAIMING.match(current) is None:  # no claim yet
            cut = max(self._held.rfind(" "), 0)
            out.append(self._held[:cut])
            self._released += self._held[:cut]
            self._held = self._held[cut:]
        return self._mark("".join(out))

    def flush(self) -> str:
        """End of stream: what was held, if it names nothing unseen."""
        if self.stopped:
            return ""
        out: list[str] = []
        rest, self._held = self._held, ""
        if rest:
            self._accept(rest, out)
        return self._mark("".join(out))

    def _mark(self, text: str) -> str:
        if text.strip():
            self._any = True
        return text

    def _accept(self, sentence: str, out: list[str]) -> bool:
        if self.invented(self._released + sentence):
            self.replaced += 1
            self.stopped = True
            if not self._any and not "".join(out).strip():
                out.append(_CANT_TELL)
            self._any = True
            return False
        out.append(sentence)
        self._any = self._any or bool(sentence.strip())
        self._released = ""
        return True


def verify_completion(
    completion: Completion, allowed: Iterable[str], on_replace: Callable[[], object] | None = None
) -> Completion:
    """``completion``'s deltas through an :class:`AnswerVerifier` (same ``usage``);
    ``on_replace()`` is called once when a sentence is dropped, and generation stops there."""
    verifier = AnswerVerifier(allowed)

    def counted() -> None:
        if verifier.replaced and on_replace is not None:
            on_replace()

    return filter_completion(completion, verifier, counted)
