"""SpeechChunker: where answers are cut into speakable pieces (pure, explicit inputs)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamkit.tts.backend import speakable
from streamkit.tts.chunker import ChunkerConfig, SpeechChunker


def pieces_of(deltas: list[str], config: ChunkerConfig | None = None) -> list[str]:
    chunker = SpeechChunker(config)
    out: list[str] = []
    for delta in deltas:
        out += chunker.feed(delta)
    return out + chunker.flush()


def tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


def test_first_piece_is_the_first_clause_then_sentences() -> None:
    text = "Well, the capital is Paris. It is large! Is it old? Yes."
    assert pieces_of(tokens(text)) == [
        "Well, the capital is Paris.",  # "Well," alone is one word: too short
        " It is large!",
        " Is it old?",
        " Yes.",
    ]
    assert pieces_of(tokens("Sure thing, I can help. Done.")) == [
        "Sure thing,", " I can help.", " Done."
    ]


def test_first_piece_comes_before_the_sentence_ends() -> None:
    chunker = SpeechChunker()
    got: list[str] = []
    for delta in tokens("The quick brown fox jumps over the lazy dog today."):
        got += chunker.feed(delta)
        if got:
            break
    # cut after six words, as soon as the sixth word is known to be complete
    assert got == ["The quick brown fox jumps over"]


def test_numbers_abbreviations_and_initials_do_not_cut() -> None:
    text = "Yes, it costs 3.50 dollars. Mr. Smith and J. Doe say so, e.g. here. Ok."
    assert pieces_of(tokens(text)) == [
        "Yes, it costs 3.50 dollars.",  # "Yes," alone is too short for the first piece
        " Mr. Smith and J. Doe say so, e.g. here.",
        " Ok.",
    ]


def test_long_sentence_cut_at_a_clause_within_the_limit() -> None:
    config = ChunkerConfig(max_words=8)
    text = "Hi there. one two three, four five six seven eight nine ten eleven."
    assert pieces_of(tokens(text), config) == [
        "Hi there.",
        " one two three,",
        " four five six seven eight nine ten eleven.",
    ]


def test_newline_ends_a_piece_and_markup_is_not_spoken() -> None:
    assert pieces_of(["Steps:\n", "1. **Open** the lid\n", "2. Close it"]) == [
        "Steps:\n", "1. **Open** the lid\n", "2. Close it"
    ]
    assert speakable("1. **Open** the `lid`") == "1. Open the lid"
    assert speakable(" ** ") == ""


@given(st.lists(st.text(alphabet="ab ,.!?\n3", max_size=12), max_size=30))
def test_pieces_concatenate_to_the_input(deltas: list[str]) -> None:
    got = pieces_of(deltas)
    assert "".join(got) == "".join(deltas)
    assert all(p for p in got)
