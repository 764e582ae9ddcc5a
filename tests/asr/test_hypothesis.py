"""LocalAgreement core: pure, fast, exhaustive-ish."""

from __future__ import annotations

from streamkit.asr.hypothesis import CommitPolicy, HypothesisBuffer, join_words, norm_word
from streamkit.core.clock import NS_PER_MS
from streamkit.core.events import Word

LA2 = CommitPolicy(min_probability=0.0, confident_probability=None)


def words(spec: str, start_ms: int = 0, step_ms: int = 300, probability: float = 0.9) -> list[Word]:
    out = []
    for i, text in enumerate(spec.split()):
        begin = (start_ms + i * step_ms) * NS_PER_MS
        out.append(Word(text, begin, begin + (step_ms - 20) * NS_PER_MS, probability))
    return out


def feed(
    hyp: HypothesisBuffer,
    ws: list[Word],
    policy: CommitPolicy = LA2,
    settled: bool = False,
    after_ms: int = 300,
) -> list[Word]:
    """One hypothesis of audio decoded up to ``after_ms`` past its last word."""
    end = max((w.end for w in ws), default=0) + after_ms * NS_PER_MS
    return hyp.update(ws, end, policy, settled)


def test_norm_word_ignores_case_and_punctuation() -> None:
    assert norm_word("Americans,") == norm_word("americans") == "americans"
    assert norm_word("I'm") == "i'm"
    assert norm_word("...") == ""


def test_numbers_agree_in_digits_and_words() -> None:
    """tiny.en writes "2," in one pass and "two" in the next: they are the same word."""
    assert norm_word("2,") == norm_word("two") == "two"
    assert norm_word("10.") == norm_word("Ten") == "ten"
    assert norm_word("25") == norm_word("twenty-five")
    assert norm_word("1st") == norm_word("first")
    hyp = HypothesisBuffer()
    assert feed(hyp, words("one 2 three")) == []
    done = feed(hyp, words("1 two 3 four"))
    assert join_words(done) == "1 two 3"  # agreed though written differently


def test_first_hypothesis_commits_nothing() -> None:
    hyp = HypothesisBuffer()
    assert feed(hyp, words("and so my")) == []
    assert join_words(hyp.tail) == "and so my"


def test_agreed_prefix_is_committed_once() -> None:
    hyp = HypothesisBuffer()
    feed(hyp, words("and so am"))
    done = feed(hyp, words("And so, my fellow"))
    assert join_words(done) == "And so,"
    assert join_words(hyp.tail) == "my fellow"
    # the same words heard again are not committed twice
    done = feed(hyp, words("and so my fellow Americans"))
    assert join_words(done) == "my fellow"
    assert hyp.committed_text == "And so, my fellow"


def test_disagreement_commits_nothing() -> None:
    hyp = HypothesisBuffer()
    feed(hyp, words("ask not"))
    assert feed(hyp, words("last knot")) == []


def test_commit_all_skips_reheard_words_by_text() -> None:
    hyp = HypothesisBuffer()
    feed(hyp, words("ask not what"))
    feed(hyp, words("ask not what your"))
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
    feed(hyp, words("go forward"))
    assert join_words(hyp.commit_tail()) == "go forward"
    assert hyp.commit_tail() == []


def test_uncertain_word_needs_a_third_hypothesis() -> None:
    policy = CommitPolicy(min_probability=0.5, uncertain_agreement=3)
    hyp = HypothesisBuffer()
    unsure = words("unless to be", probability=0.3)
    feed(hyp, unsure, policy)
    assert feed(hyp, unsure, policy) == []  # two agree, but the first word is uncertain
    assert join_words(feed(hyp, unsure, policy)) == "unless to be"
    never = CommitPolicy(min_probability=0.5, uncertain_agreement=None)
    hyp = HypothesisBuffer()
    for _ in range(4):
        assert feed(hyp, unsure, never) == []
    assert join_words(hyp.commit_all(unsure)) == "unless to be"


def test_confident_word_well_inside_commits_on_one_hypothesis() -> None:
    policy = CommitPolicy(confident_probability=0.95, confident_margin_s=0.3)
    hyp = HypothesisBuffer()
    sure = words("go forward", probability=0.99)  # ends at 580 ms
    assert join_words(feed(hyp, sure, policy, after_ms=400)) == "go forward"
    hyp = HypothesisBuffer()
    # decoded 200 ms past "forward": it is too close to the end to stand alone
    assert join_words(feed(hyp, sure, policy, after_ms=200)) == "go"
    # a less confident pass that agrees commits it the usual way (LocalAgreement-2)
    assert join_words(feed(hyp, words("go forward", probability=0.9), policy)) == "forward"


def test_pause_needs_a_confirming_hypothesis_unless_asked_not_to() -> None:
    hyp = HypothesisBuffer()
    ws = words("desire and crease")
    assert feed(hyp, ws, LA2, settled=True) == []
    assert join_words(hyp.tail) == "desire and crease"
    # the next pass (speech went on) hears it differently: only the agreed prefix commits
    assert join_words(feed(hyp, words("desire increase that"), LA2)) == "desire"
    once = CommitPolicy(min_probability=0.0, pause_agreement=1)
    hyp = HypothesisBuffer()
    assert join_words(feed(hyp, ws, once, settled=True)) == "desire and crease"


def test_margin_holds_words_near_the_end_except_at_a_pause() -> None:
    policy = CommitPolicy(min_probability=0.0, confident_probability=None, margin_s=0.5)
    hyp = HypothesisBuffer()
    feed(hyp, words("one two three"), policy)
    # decoded 300 ms past "three": it is within the margin, "one two" are not
    assert join_words(feed(hyp, words("one two three"), policy)) == "one two"
    assert join_words(feed(hyp, words("one two three"), policy, settled=True)) == "three"


def test_a_last_phrase_repeated_in_no_time_is_dropped() -> None:
    """A final pass of "Ask not!" said "Ask not! Ask not!", the copy 60 ms long."""
    from streamkit.asr.hypothesis import drop_loops
    from streamkit.asr.whisper import DecodedWord as W

    looped = [
        W("Ask", 0.0, 0.82, 0.9),
        W("not!", 0.82, 1.32, 0.9),
        W("Ask", 1.32, 1.32, 0.9),
        W("not!", 1.32, 1.38, 0.9),
    ]
    assert [w.text for w in drop_loops(looped)] == ["Ask", "not!"]
    one = [W("Three.", 0.1, 0.6, 0.9), W("Three.", 0.6, 0.61, 0.9)]
    assert [w.text for w in drop_loops(one)] == ["Three."]
    said_twice = [
        W("ask", 0.0, 0.4, 0.9),
        W("not", 0.4, 0.8, 0.9),
        W("ask", 1.0, 1.4, 0.9),
        W("not", 1.4, 1.8, 0.9),
    ]
    assert drop_loops(said_twice) == said_twice  # a phrase really said twice stays
    no_no = [W("no", 0.0, 0.3, 0.9), W("no", 0.4, 0.7, 0.9)]
    assert drop_loops(no_no) == no_no
