"""The markup guard: leaked time marks, role prefixes and template tokens never reach the user."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.lm.backend import Completion
from streamkit.lm.guard import MarkupGuard, guard_completion


def run(pieces: list[str]) -> tuple[str, MarkupGuard]:
    guard = MarkupGuard()
    out = ""
    for piece in pieces:
        out += guard.feed(piece)
        if guard.stopped:
            break
    return out + guard.flush(), guard


@pytest.mark.parametrize(
    ("pieces", "expected", "counts"),
    [
        # the answers the bundled model gave before the context was redesigned
        (["The user asked: [0", ".4] What color", " is the shirt?"],
         "The user asked: What color is the shirt?", {"time_mark": 1}),
        (["[7.1]", " You can", "'t do it all"], "You can't do it all", {"time_mark": 1}),
        (["Cam", "era: one face."], "one face.", {"role": 1}),
        (["Camera now: one person."], "one person.", {"role": 1}),
        (["Assistant", ": Paris."], "Paris.", {"role": 1}),
        (["It is blue.<|im_end|>"], "It is blue.", {"special": 1}),
    ],
)  # fmt: skip
def test_strips_markup_split_across_pieces(
    pieces: list[str], expected: str, counts: dict[str, int]
) -> None:
    out, guard = run(pieces)
    assert out == expected
    assert guard.counts == counts
    assert guard.stripped == sum(counts.values())


def test_user_prefix_after_the_answer_stops_the_stream() -> None:
    out, guard = run(["Hello! How can I help?", "\nUs", "er: what is", " the time"])
    assert out.rstrip() == "Hello! How can I help?"
    assert guard.stopped
    assert guard.feed("more") == ""


def test_template_start_token_stops_the_stream() -> None:
    out, guard = run(["Paris.", "<|im_start|>user\nthanks"])
    assert out == "Paris."
    assert guard.stopped


@pytest.mark.parametrize(
    "text",
    [
        "Camera shows one person.",
        "I see a user interface.",
        "You are wearing [blue] and a hat.",
        "It costs 3.50 EUR, at 10:30.",
        "Users: none.",
    ],
)
def test_plain_text_passes_unchanged(text: str) -> None:
    out, guard = run(list(text))  # one character at a time: the worst split
    assert out == text
    assert guard.stripped == 0


def test_held_text_is_released_once_it_cannot_be_markup() -> None:
    guard = MarkupGuard()
    assert guard.feed("The camera") == "The "  # "camera" could still become "camera:"
    assert guard.feed(" shows") == "camera shows"
    assert guard.feed(" [1") == " "  # an unclosed "[1" could be a time mark
    assert guard.feed("2 cats]") == "[12 cats]"


@given(st.lists(st.text(alphabet="ab [].01:Userc\n", max_size=8), max_size=12))
def test_any_split_gives_the_same_text_as_one_piece(pieces: list[str]) -> None:
    whole, _ = run(["".join(pieces)])
    split, _ = run(pieces)
    assert split == whole


async def test_guard_completion_wraps_a_backend_stream_and_counts() -> None:
    closed: list[bool] = []

    async def gen():  # type: ignore[no-untyped-def]
        try:
            for piece in ["[0.2] ", "Camera", ": one ", "person.", "\nUser: hi"]:
                yield piece
        finally:
            closed.append(True)

    inner = Completion(gen())
    counted: list[int] = []
    outer = guard_completion(inner, counted.append)
    assert outer.usage is inner.usage
    text = "".join([piece async for piece in outer])
    assert text.strip() == "one person."
    assert closed == [True]
    assert counted == [3]  # a time mark, "Camera:", and "User:" (which stopped it)


def test_single_line_ends_at_the_first_break_after_text_not_before() -> None:
    guard = MarkupGuard(single_line=True)
    out = guard.feed("\n\n") + guard.feed("The Pacific") + guard.feed(" Ocean.\nIt is big.")
    assert out == "The Pacific Ocean."
    assert guard.stopped
    plain, _ = run(["one\ntwo"])
    assert plain == "one\ntwo"
