"""WER normalisation: numbers as words, punctuation and case ignored, "mr." → "mister"."""

from __future__ import annotations

import pytest

from streamkit.asr.textnorm import normalize, wer, word_errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One, two, three.", "one two three"),
        ("1. 2. 3.", "one two three"),
        ("Go forward 10 meters.", "go forward ten meters"),
        ("for the 20th time", "for the twentieth time"),
        ("Lay blue at X4 now.", "lay blue at x four now"),
        ("Mr. Quilter", "mister quilter"),
        ("He was not an ill -disposed young man.", "he was not an ill disposed young man"),
        ("Feed’st thy light’s flame", "feed'st thy light's flame"),
        ("'quoted' words", "quoted words"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_word_errors_and_wer() -> None:
    assert word_errors("go forward ten meters", "Go forward 10 meters.") == (0, 4)
    assert word_errors("go forward ten meters", "go forward") == (2, 4)
    assert word_errors("", "you") == (1, 0)  # words on a non-speech clip
    assert wer(["a b c d", ""], ["a b x d", "hello"]) == pytest.approx(0.25)
