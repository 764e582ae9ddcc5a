"""Simple requests (pure): say a phrase, count, spell — what a 135M model gets wrong.

Measured with ``bench/answers.py``: SmolLM2-135M answered "say goodbye" with "I'm sorry, but
I'm unable to respond…", "count to five" with "The number of words in a sentence is called a
syllable." and spelled "cat" as "kat", even with worked examples and a stated rule. These
requests have exactly one right answer, so :func:`answer_request` gives it:

- ``say X`` (``please say X``, ``can you say X``, ``say X to me``) → ``X!``;
- ``count to N`` / ``count from A to B`` (numbers as words or digits, up to 20) →
  ``One, two, three.``;
- ``spell X`` / ``how do you spell (the word) X`` → ``C-A-T.``

Anything else is ``None`` (the model answers).
"""

from __future__ import annotations

import re

from streamkit.lm.grounding_facts import NUMBER_WORDS, number_of

__all__ = ["answer_request"]

_POLITE = r"(?:please |can you |could you |would you |will you |now )*"
_SAY = re.compile(
    r"^" + _POLITE + r"say ([a-z][a-z' ,]{0,60}?)(?: to (?:me|us|everyone|everybody|them))?"
    r"(?: for me)?(?: please)?(?: now)?$"
)
_COUNT = re.compile(
    r"^" + _POLITE + r"count (?:from (\w+) )?(?:up )?to (\w+)(?: for me)?(?: please)?$"
)
_SPELL = re.compile(
    r"^(?:" + _POLITE + r"spell|how do you spell|how is|can you spell)(?: the word)? ([a-z]+)"
    r"(?: spelled| spelt)?(?: please)?$"
)


def _plain(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9' ,]+", " ", text)
    return " ".join(text.replace(",", " ").split())


def answer_request(utterance: str) -> str | None:
    """The one right answer to a simple request, or ``None`` (see the module docstring)."""
    text = _plain(utterance)
    if (match := _COUNT.match(text)) is not None:
        first = number_of(match.group(1) or "one")
        last = number_of(match.group(2))
        if first is None or last is None or not 0 <= first <= last <= 20:
            return None
        numbers = [NUMBER_WORDS[n] for n in range(first, last + 1)]
        return ", ".join(numbers).capitalize() + "."
    if (match := _SPELL.match(text)) is not None:
        return "-".join(match.group(1).upper()) + "."
    if (match := _SAY.match(text)) is not None:
        phrase = match.group(1).strip(" ,")
        if not phrase or phrase.split()[0] in (
            "something",
            "anything",
            "that",
            "it",
            "what",
            "again",
            "this",
            "more",
            "nothing",
        ):
            return None
        return phrase[:1].upper() + phrase[1:] + "!"
    return None
