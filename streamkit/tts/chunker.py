"""Cutting a stream of answer text into speakable pieces (pure, like ``StopFilter``).

:class:`SpeechChunker` takes the responder's deltas as they come and returns the pieces a voice
should speak, as early as they can be spoken naturally:

- the **first** piece ends at the first clause or sentence boundary once it has
  ``min_first_words`` words (``"Sure,"`` → spoken while the rest is generated), or after
  ``first_max_words`` words when no boundary comes (a long opening clause is cut at a word);
- **later** pieces are whole sentences; a sentence longer than ``max_words`` is cut at its last
  clause boundary (else at ``max_words``).

A boundary is punctuation followed by whitespace, so ``3.5`` and ``e.g.`` never cut, and
abbreviations (``Mr.``, ``Dr.``, single initials) and list markers (``1.`` opening a line) are
not sentence ends. A newline always ends a
piece. Pieces are slices of the input: their concatenation is exactly the text fed (so what was
spoken maps back onto the answer). ``flush`` returns the rest at the end of the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ChunkerConfig", "SpeechChunker"]

_SENTENCE = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|\n")
_CLAUSE = re.compile(r"(?:[,;:]|\s[-–—])[\"')\]]*(?=\s)")
_WORD = re.compile(r"\S+(?=\s)")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "vs", "etc", "e.g", "i.e", "no", "approx"}
)


@dataclass(frozen=True, slots=True)
class ChunkerConfig:
    """Where pieces are cut (counts in words)."""

    min_first_words: int = 2
    first_max_words: int = 6
    max_words: int = 30


def _words(text: str) -> int:
    return len(text.split())


def _is_abbreviation(text: str, end: int) -> bool:
    """Whether the sentence punctuation ending at ``end`` closes an abbreviation/initial."""
    match = re.search(r"(\S+)$", text[:end])
    if match is None:
        return False
    word = match.group(1).rstrip(".").lower()
    if word.isdigit() and not text[: match.start()].strip(" \t"):
        return True  # "1." opening a line is a list marker
    if word.isdigit() and text[: match.start()].rstrip(" \t").endswith("\n"):
        return True
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha() and text[end - 1] == ".")


class SpeechChunker:
    """Pure text → pieces cutter (see the module docstring). One instance per answer."""

    def __init__(self, config: ChunkerConfig | None = None) -> None:
        self.config = config or ChunkerConfig()
        self._buf = ""
        self._first = True
        self.pieces = 0

    def feed(self, delta: str) -> list[str]:
        """Add a delta; return the pieces complete now (maybe none)."""
        self._buf += delta
        out: list[str] = []
        while (cut := self._cut()) is not None:
            piece, self._buf = self._buf[:cut], self._buf[cut:]
            out.append(piece)
            self._first = False
            self.pieces += 1
        return out

    def flush(self) -> list[str]:
        """The text still held (the end of the answer), as the last piece (or nothing)."""
        rest, self._buf = self._buf, ""
        if not rest:
            return []
        self.pieces += 1
        return [rest]

    @property
    def pending(self) -> str:
        """Text held back (not yet a complete piece)."""
        return self._buf

    def _sentence_ends(self) -> list[int]:
        return [m.end() for m in _SENTENCE.finditer(self._buf)
                if m.group() == "\n" or not _is_abbreviation(self._buf, m.start() + 1)]

    def _cut(self) -> int | None:
        buf, cfg = self._buf, self.config
        if not buf.strip():
            return None
        sentences = self._sentence_ends()
        if self._first:
            bounds = sorted({*sentences, *(m.end() for m in _CLAUSE.finditer(buf))})
            for end in bounds:
                if _words(buf[:end]) >= cfg.min_first_words or buf[:end].endswith("\n"):
                    return end
            words = list(_WORD.finditer(buf))
            if len(words) >= cfg.first_max_words:
                return words[cfg.first_max_words - 1].end()
            return None
        for end in sentences:
            if _words(buf[:end]) <= cfg.max_words:
                return end
            break
        if _words(buf) <= cfg.max_words:
            return None
        # a long sentence: cut at its last clause boundary within max_words, else at a word
        words = list(_WORD.finditer(buf))
        limit = words[cfg.max_words - 1].end() if len(words) >= cfg.max_words else len(buf)
        clauses = [m.end() for m in _CLAUSE.finditer(buf) if m.end() <= limit]
        if clauses:
            return clauses[-1]
        return limit if len(words) >= cfg.max_words else None
