"""The first piece of a held speculation (pure part): what is prepared, and when."""

from __future__ import annotations

from streamkit.core.events import ResponseHeld
from streamkit.tts.chunker import ChunkerConfig
from streamkit.tts.prepared import first_piece

CHUNKER = ChunkerConfig()


def held(text: str, complete: bool = False) -> str:
    return first_piece(ResponseHeld("r1", "u1", text, complete), CHUNKER)


def test_a_sentence_mark_at_the_end_of_held_text_closes_the_first_piece() -> None:
    assert held("The capital of France is Paris.") == "The capital of France is Paris."


def test_a_word_that_may_go_on_is_not_prepared_until_the_answer_is_complete() -> None:
    assert held("The capital") == ""
    assert held("Hello there my fri") == ""  # "fri" + "end"
    assert held("Yes") == ""
    assert held("Yes", complete=True) == "Yes"  # a short answer, all of it held
