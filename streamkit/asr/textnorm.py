"""Text normalisation for scoring transcripts (WER), per the test data's convention.

``tests/data/README.md`` (and ``../shared/data``) asks to score after: lower case, punctuation
stripped, numbers as words, "mr." → "mister". :func:`normalize` does exactly that, with
``num2words`` for numbers ("20th" → "twentieth", "x4" → "x four", "1, 2, 3" → "one two
three"), so a reference written in words and a hypothesis written in digits score equal.
(whisper-normalizer's ``EnglishTextNormalizer`` goes the other way, words → digits, and joins
"one two three" into "123" while leaving "1. 2. 3." as "one 2 3" — unfair to streaming output,
which punctuates short pieces.) :func:`wer` is jiwer's word error rate over normalised texts
(a fraction, e.g. 0.085). Pure functions; no model, no I/O.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence

__all__ = ["normalize", "wer", "word_errors"]

_ABBREVIATIONS = {
    "mr.": "mister",
    "mrs.": "missus",
    "dr.": "doctor",
    "mr": "mister",
    "mrs": "missus",
}
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NUMBER = re.compile(r"\d+")
_NON_WORD = re.compile(r"[^\w\s']+")
_EDGE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def _words_for(number: str, ordinal: bool = False) -> str:
    # imported by name: num2words ships no type information
    num2words = importlib.import_module("num2words").num2words
    words: str = num2words(int(number), to="ordinal" if ordinal else "cardinal")
    return " " + words.replace("-", " ").replace(",", " ") + " "


def normalize(text: str) -> str:
    """Normalised form of ``text`` for scoring (single spaces, no punctuation)."""
    text = text.replace("’", "'").replace("‘", "'").lower()
    text = " ".join(_ABBREVIATIONS.get(token, token) for token in text.split())
    text = _ORDINAL.sub(lambda m: _words_for(m.group(1), ordinal=True), text)
    text = _THOUSANDS.sub("", text)
    text = _LETTER_DIGIT.sub(" ", text)
    text = _NUMBER.sub(lambda m: _words_for(m.group(0)), text)
    text = _NON_WORD.sub(" ", text.replace("_", " "))
    text = _EDGE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit errors, reference words) after normalisation; an empty reference counts
    every hypothesis word as an error."""
    import jiwer

    ref = normalize(reference)
    hyp = normalize(hypothesis)
    n_ref = len(ref.split())
    if n_ref == 0:
        return len(hyp.split()), 0
    if not hyp:
        return n_ref, n_ref
    out = jiwer.process_words(ref, hyp)
    return int(out.substitutions + out.deletions + out.insertions), n_ref


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (total errors / total reference words) over pairs with a reference."""
    errors = words = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        if not normalize(ref):
            continue
        e, n = word_errors(ref, hyp)
        errors += e
        words += n
    return errors / words if words else 0.0
