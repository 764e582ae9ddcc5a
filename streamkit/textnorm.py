"""Text normalisation for scoring transcripts (WER), the way Whisper's authors score.

:func:`normalize` applies whisper-normalizer's ``EnglishTextNormalizer`` (lower case,
punctuation stripped, "mr." → "mister", spelled numbers → digits, British → American
spelling) when it is installed, else a plain fallback (lower case, punctuation stripped).
:func:`wer` is jiwer's word error rate over normalised texts (a fraction, e.g. 0.085).
Pure functions; no model, no I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

__all__ = ["normalize", "wer", "word_errors"]

_PUNCT = re.compile(r"[^\w\s']+")


@functools.cache
def _normalizer() -> Callable[[str], str]:
    try:
        from whisper_normalizer.english import EnglishTextNormalizer
    except ImportError:  # pragma: no cover - optional dependency

        def fallback(text: str) -> str:
            return " ".join(_PUNCT.sub(" ", text.lower()).split())

        return fallback
    normalizer: Callable[[str], str] = EnglishTextNormalizer()
    return normalizer


def normalize(text: str) -> str:
    """Normalised form of ``text`` for scoring (single spaces, no punctuation)."""
    return " ".join(_normalizer()(text).split())


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
    return out.substitutions + out.deletions + out.insertions, n_ref


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
