"""LocalAgreement core: pure, fast, exhaustive-ish."""

from __future__ import annotations

from streamkit.clock import NS_PER_MS
from streamkit.encoders.hypothesis import HypothesisBuffer, join_words, norm_word
from streamkit.events import Word


def words(spec: str, start_ms: int = 0, step_ms: int = 300) -> list[Word]:
    out = []
    for i, text in enumerate(spec.split()):
        begin = (start_ms + i * step_ms) * NS_PER_MS
        out.append(Word(text, begin, begin + (step_ms - 20) * NS_PER_MS, 0.9))
    return out


def test_norm_word_ignores_case_and_punctuation() -> None:
    assert norm_word("Americans,") == norm_word("americans") == "americans"
    assert norm_word("I'm") == "i'm"
    assert norm_word("...") == ""


def test_first_hypothesis_commits_nothing() -> None:
    hyp = HypothesisBuffer()
    assert hyp.update(words("and so my")) == []
    assert join_words(hyp.tail) == "and so my"


def test_agreed_prefix_is_committed_once() -> None:
    hyp = HypothesisBuffer()
    hyp.update(words("and so am"))
    done = hyp.update(words("And so, my fellow"))
    assert join_words(done) == "And so,"
    assert join_words(hyp.tail) == "my fellow"
    # the same words heard again are not committed twice
    done = hyp.update(words("and so my fellow Americans"))
    assert join_words(done) == "my fellow"
    assert hyp.committed_text == "And so, my fellow"


def test_disagreement_commits_nothing() -> None:
    hyp = HypothesisBuffer()
    hyp.update(words("ask not"))
    assert hyp.update(words("last knot")) == []


def test_commit_all_skips_reheard_words_by_text() -> None:
    hyp = HypothesisBuffer()
    hyp.update(words("ask not what"))
    hyp.update(words("ask not what your"))
    assert hyp.committed_text == "ask not what"
    # re-decoded window with shifted times: the committed tail is found by text
    shifted = words("ask not what your country", start_ms=120)
    assert join_words(hyp.commit_all(shifted)) == "your country"
    assert hyp.tail == []


def test_time_filter_when_text_differs() -> None:
    hyp = HypothesisBuffer()
    hyp.commit_all(words("one two three"))  # ends at 880 ms
    new = words("won to three four five")  # midpoints of the first three are before 880 ms
    assert join_words(hyp.commit_all(new)) == "four five"


def test_prior_words_of_previous_utterance_are_context_only() -> None:
    prior = words("fellow Americans")
    hyp = HypothesisBuffer(prior=prior)
    new = words("fellow Americans ask not", start_ms=20)
    assert join_words(hyp.commit_all(new)) == "ask not"
    assert hyp.committed_text == "ask not"


def test_set_prior_updates_committed_end() -> None:
    hyp = HypothesisBuffer()
    hyp.set_prior(words("a b c"))
    assert hyp.committed_end == words("a b c")[-1].end
    assert join_words(hyp.commit_all(words("a b c d"))) == "d"


def test_commit_tail_commits_last_hypothesis() -> None:
    hyp = HypothesisBuffer()
    hyp.update(words("go forward"))
    assert join_words(hyp.commit_tail()) == "go forward"
    assert hyp.commit_tail() == []
