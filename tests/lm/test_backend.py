"""Pure helpers of the backend protocol."""

from __future__ import annotations

from streamkit.lm.backend import StopFilter, approx_token_count


def run(pieces: list[str], stops: tuple[str, ...]) -> tuple[list[str], bool]:
    f = StopFilter(stops)
    out = [f.feed(p) for p in pieces]
    out.append(f.flush())
    return [o for o in out if o], f.stopped


def test_no_part_of_a_stop_string_is_emitted() -> None:
    out, stopped = run(["Paris.", "\n", "\nUser", ":", " hi"], ("\nUser:",))
    assert "".join(out) == "Paris.\n"
    assert stopped


def test_held_text_is_released_when_it_is_not_a_stop() -> None:
    out, stopped = run(["a\n", "Us", "ually so."], ("\nUser:",))
    assert out == ["a", "\nUsually so."]
    assert not stopped
    out, _ = run(["the end\nUs"], ("\nUser:",))
    assert "".join(out) == "the end\nUs"  # flushed at the end: nothing lost


def test_earliest_of_several_stops_and_no_stops() -> None:
    out, stopped = run(["one<|im_start|>two\nUser:"], ("\nUser:", "<|im_start|>"))
    assert out == ["one"]
    assert stopped
    assert run(["plain ", "text"], ())[0] == ["plain ", "text"]


def test_approx_token_count() -> None:
    assert approx_token_count("") == 0
    assert approx_token_count("abcd") == 1
    assert approx_token_count("abcde") == 2
