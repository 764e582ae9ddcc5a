"""Rule-based scoring of one answer (``bench/answers.py``): pure functions, no model.

An answer passes when every rule holds:

- not empty, at most ``MAX_WORDS`` words;
- no leaked markup: a time mark ``[12.3]``, a role prefix (``User:``, ``Camera:``,
  ``Assistant:`` …) or a chat-template token;
- no third-person narration about the user ("the user …", "the user's …");
- nothing invented: no colour, brand or object word that is not in what the camera reported
  (the observations the client received), what the user said, or the case's expected facts;
- the expected facts are there (every group matched), and an answerable question is not
  refused; an unanswerable one *is* refused (``REFUSALS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BRANDS",
    "COLOURS",
    "MAX_WORDS",
    "OBJECTS",
    "REFUSALS",
    "Verdict",
    "invented",
    "leaked_markup",
    "normalise",
    "refused",
    "score",
    "third_person",
]

MAX_WORDS = 60

COLOURS = frozenset(
    [
        "red",
        "orange",
        "yellow",
        "green",
        "blue",
        "purple",
        "violet",
        "pink",
        "brown",
        "black",
        "white",
        "grey",
        "gray",
        "silver",
        "gold",
        "golden",
        "cyan",
        "teal",
        "turquoise",
        "navy",
        "beige",
        "maroon",
        "magenta",
        "lavender",
        "indigo",
    ]
)
BRANDS = frozenset(
    [
        "samsung",
        "apple",
        "iphone",
        "rolex",
        "casio",
        "omega",
        "seiko",
        "nike",
        "adidas",
        "puma",
        "gucci",
        "prada",
        "sony",
        "google",
        "pixel",
        "huawei",
        "nokia",
        "lg",
        "dell",
        "hp",
        "lenovo",
        "microsoft",
        "canon",
        "nikon",
        "ray-ban",
        "rayban",
        "oakley",
        "timex",
        "fossil",
        "swatch",
        "cartier",
        "tag",
        "heuer",
        "armani",
        "levi",
        "levis",
        "zara",
    ]
)
OBJECTS = frozenset(
    [
        "phone",
        "smartphone",
        "cup",
        "mug",
        "book",
        "pen",
        "pencil",
        "watch",
        "bottle",
        "glass",
        "hat",
        "cap",
        "flower",
        "flowers",
        "rose",
        "keys",
        "key",
        "bag",
        "ball",
        "laptop",
        "computer",
        "remote",
        "knife",
        "fork",
        "spoon",
        "umbrella",
        "wallet",
        "ring",
        "toy",
        "guitar",
        "banana",
        "sandwich",
        "coffee",
        "tea",
        "microphone",
        "headphones",
        "tablet",
        "newspaper",
        "magazine",
        "box",
        "card",
        "cat",
        "dog",
        "bird",
        "car",
    ]
)
REFUSALS = (
    "can't tell",
    "cannot tell",
    "can not tell",
    "can't see",
    "cannot see",
    "can not see",
    "don't know",
    "do not know",
    "not sure",
    "unable to",
    "no way to",
    "can't say",
    "cannot say",
    "not able to",
    "i can't",
    "i cannot",
    "don't see",
    "do not see",
    "can't read",
    "cannot read",
    "no camera",
    "camera is off",
)

_MARKUP = (
    re.compile(r"\[\s*\d+(?:[.,]\d+)?\s*s?\s*\]"),
    re.compile(r"(?<![a-z])(?:user|assistant|system|camera(?: now)?|human|ai)\s?:", re.I),
    re.compile(r"<\|[^|]*\|>"),
)
_THIRD = re.compile(r"\bthe user(?:'s|s)?\b|\buser's\b|\bthe person speaking\b", re.I)


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces (punctuation → space), padded by spaces."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9']+", " ", text)
    return " " + " ".join(text.split()) + " "


def leaked_markup(answer: str) -> bool:
    return any(p.search(answer) for p in _MARKUP)


def third_person(answer: str) -> bool:
    return _THIRD.search(answer) is not None


def refused(answer: str) -> bool:
    text = " ".join(answer.lower().replace("’", "'").split())
    return any(phrase in text for phrase in REFUSALS)


def invented(answer: str, known: Iterable[str]) -> list[str]:
    """Colour, brand or object words of ``answer`` that no ``known`` text contains."""
    allowed = set(normalise(" ".join(known)).split())
    words = normalise(answer).split()
    found: list[str] = []
    for word in words:
        base = word[:-1] if word.endswith("s") and word[:-1] in OBJECTS else word
        named = base in COLOURS | BRANDS | OBJECTS
        if named and word not in allowed and base not in allowed and base not in found:
            found.append(base)
    return found


@dataclass(frozen=True)
class Verdict:
    """The score of one answer: ``passed`` and, when not, ``reasons``."""

    passed: bool
    reasons: tuple[str, ...]
    markup: bool
    third: bool
    invented: tuple[str, ...]


def score(
    answer: str,
    *,
    expect: tuple[tuple[str, ...], ...],
    refuse: bool,
    known: Iterable[str],
) -> Verdict:
    """Apply every rule (see the module docstring) to ``answer``."""
    reasons: list[str] = []
    text = normalise(answer)
    n_words = len(text.split())
    if n_words == 0:
        reasons.append("empty")
    elif n_words > MAX_WORDS:
        reasons.append(f"too long ({n_words} words)")
    markup = leaked_markup(answer)
    if markup:
        reasons.append("markup")
    third = third_person(answer)
    if third:
        reasons.append("third person")
    known_list = list(known) + [alt for group in expect for alt in group]
    made_up = invented(answer, known_list)
    if made_up:
        reasons.append("invented " + ",".join(made_up))
    said_no = refused(answer)
    if refuse and not said_no:
        reasons.append("no refusal")
    if not refuse and said_no:
        reasons.append("refused")
    for group in expect:
        if not any(f" {alt} " in text for alt in group):
            reasons.append("missing " + "|".join(group[:3]))
    return Verdict(not reasons, tuple(reasons), markup, third, tuple(made_up))
