"""Simple requests with one right answer: say, count, spell (phrasings not in the bench)."""

from __future__ import annotations

import pytest

from streamkit.lm.grounding import decide
from streamkit.lm.grounding_requests import answer_request


@pytest.mark.parametrize(
    ("utterance", "answer"),
    [
        ("Can you say good evening?", "Good evening!"),
        ("Say happy birthday to me, please.", "Happy birthday!"),
        ("Count to five.", "One, two, three, four, five."),
        ("Could you count from 3 to 6?", "Three, four, five, six."),
        ("Spell the word dog.", "D-O-G."),
        ("How do you spell house?", "H-O-U-S-E."),
        ("Say that again.", None),
        ("Count the stars in the sky.", None),
        ("Count to a hundred.", None),
        ("What did you say?", None),
        ("Tell me a joke.", None),
    ],
)
def test_answer_request(utterance: str, answer: str | None) -> None:
    assert answer_request(utterance) == answer


def test_requests_come_after_scene_and_memory() -> None:
    assert decide("Please say bonjour.", None, {}) == ("Bonjour!", "request")
    assert decide("Say my name.", None, {})[1] == "memory"  # type: ignore[index]
