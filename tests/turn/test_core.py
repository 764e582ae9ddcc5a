"""TurnCore on explicit audio times: synchronous, no model, no clock."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.core.clock import NS_PER_MS
from streamkit.turn.core import (
    EndTurn,
    Predict,
    Resume,
    Speculate,
    TurnAction,
    TurnConfig,
    TurnCore,
    words_cue,
)

MS = NS_PER_MS
SMART = TurnConfig(
    detection="smart",
    pause_ns=160 * MS,
    threshold=0.5,
    repredict_ns=200 * MS,
    max_silence_ns=1000 * MS,
    statement_silence_ns=0,
    pre_speech_ns=500 * MS,
)
VAD = replace(SMART, detection="vad", hangover_ns=500 * MS)
WAIT = replace(SMART, words_wait_ns=150 * MS)  # a "complete" waits for the pause's words


def run(
    core: TurnCore, uid: str, start: int, silence: int | None, times: range
) -> list[TurnAction]:
    out: list[TurnAction] = []
    for now in times:
        out += core.update(now, uid, start, silence)
    return out


def test_vad_policy_ends_after_the_hangover_and_speculates_at_the_pause() -> None:
    core = TurnCore(VAD)
    assert run(core, "u1", 0, None, range(0, 2000 * MS, 20 * MS)) == []
    actions = run(core, "u1", 0, 2000 * MS, range(2000 * MS, 2600 * MS, 20 * MS))
    assert actions == [
        Speculate("u1", 2000 * MS, 2160 * MS),
        EndTurn("u1", 2000 * MS, 2500 * MS, "silence", None),
    ]
    assert not any(isinstance(a, Predict) for a in actions)
    assert core.update(2700 * MS, "u1", 0, 2000 * MS) == []  # ended: nothing more


def test_smart_complete_ends_the_turn_when_the_answer_arrives() -> None:
    core = TurnCore(SMART)
    core.update(1000 * MS, "u1", 200 * MS, None)
    assert core.update(1140 * MS, "u1", 200 * MS, 1000 * MS) == []
    actions = core.update(1160 * MS, "u1", 200 * MS, 1000 * MS)
    predict = Predict(1, "u1", 200 * MS - 500 * MS, 1160 * MS)
    assert actions == [Speculate("u1", 1000 * MS, 1160 * MS), predict]
    assert core.waiting
    assert core.update(1180 * MS, "u1", 200 * MS, 1000 * MS) == []  # one job at a time
    assert core.heard("u1", "It is.", 1100 * MS, 1190 * MS) == []  # the pause decode's words
    assert core.result(predict, 0.93) == [EndTurn("u1", 1000 * MS, 1160 * MS, "model", 0.93)]
    assert core.update(1200 * MS, "u1", 200 * MS, 1000 * MS) == []


def test_a_complete_before_the_words_waits_for_them_or_words_wait_ns() -> None:
    core = TurnCore(WAIT)
    (predict,) = [a for a in core.update(1160 * MS, "u1", 0, 1000 * MS) if isinstance(a, Predict)]
    assert core.result(predict, 0.93) == []  # the pause decode is still running
    assert core.update(1200 * MS, "u1", 0, 1000 * MS) == []
    assert core.heard("u1", "It is.", 1100 * MS, 1240 * MS) == [
        EndTurn("u1", 1000 * MS, 1240 * MS, "model", 0.93)
    ]
    deaf = TurnCore(WAIT)  # no words come (e.g. the ASR had nothing new to decode)
    (predict,) = [a for a in deaf.update(1160 * MS, "u1", 0, 1000 * MS) if isinstance(a, Predict)]
    assert deaf.result(predict, 0.93) == []
    assert run(deaf, "u1", 0, 1000 * MS, range(1180 * MS, 1310 * MS, 20 * MS)) == []
    assert deaf.update(1310 * MS, "u1", 0, 1000 * MS) == [
        EndTurn("u1", 1000 * MS, 1310 * MS, "model", 0.93)
    ]
    eager = TurnCore(SMART)  # words_wait_ns: 0 by default
    (predict,) = [a for a in eager.update(1160 * MS, "u1", 0, 1000 * MS) if isinstance(a, Predict)]
    assert [type(a) for a in eager.result(predict, 0.93)] == [EndTurn]
    assert eager.heard("u1", "And so my fellow", 1100 * MS, 1200 * MS) == []  # too late


def test_smart_incomplete_asks_again_then_gives_up_at_max_silence() -> None:
    core = TurnCore(SMART)
    asked: list[Predict] = []
    ended: list[EndTurn] = []
    for now in range(0, 2500 * MS, 20 * MS):
        silence = None if now < 1000 * MS else 1000 * MS
        for action in core.update(now, "u1", 0, silence):
            if isinstance(action, Predict):
                asked.append(action)
                assert core.result(action, 0.2) == []  # "incomplete", answered at once
            elif isinstance(action, EndTurn):
                ended.append(action)
    assert [p.end for p in asked] == [t * MS for t in (1160, 1360, 1560, 1760, 1960)]
    assert ended == [EndTurn("u1", 1000 * MS, 2000 * MS, "silence", 0.2)]


def test_a_late_answer_after_speech_resumed_is_ignored() -> None:
    core = TurnCore(SMART)
    core.update(900 * MS, "u1", 0, None)
    speculate, predict = core.update(1200 * MS, "u1", 0, 1000 * MS)
    assert isinstance(speculate, Speculate)
    assert isinstance(predict, Predict)
    assert core.update(1240 * MS, "u1", 0, None) == [Resume("u1", 1240 * MS)]
    assert core.result(predict, 0.99) == []  # stale: the user went on
    assert core.update(1260 * MS, "u1", 0, None) == []  # one Resume per pause
    # the next pause is a new one: speculation and a new question again
    actions = core.update(2000 * MS, "u1", 0, 1800 * MS)
    assert [type(a) for a in actions] == [Speculate, Predict]
    assert isinstance(actions[1], Predict)
    assert actions[1].id == predict.id + 1


def test_a_new_utterance_resets_and_a_closed_one_stops() -> None:
    core = TurnCore(SMART)
    (predict,) = [a for a in core.update(900 * MS, "u1", 0, 700 * MS) if isinstance(a, Predict)]
    assert core.update(920 * MS, "u1", 0, 700 * MS) == []
    assert core.update(1000 * MS, None, 0, None) == []  # the ASR ended it (e.g. commit)
    assert core.result(predict, 0.99) == []
    actions = core.update(3000 * MS, "u2", 2000 * MS, 2800 * MS)
    assert [type(a) for a in actions] == [Speculate, Predict]


def test_predict_window_is_at_most_8_s_and_starts_before_speech() -> None:
    core = TurnCore(SMART)
    actions = core.update(20_000 * MS, "u1", 1000 * MS, 19_800 * MS)
    (predict,) = [a for a in actions if isinstance(a, Predict)]
    assert predict.end - predict.start == 8000 * MS
    actions = TurnCore(SMART).update(3000 * MS, "u1", 1000 * MS, 2800 * MS)
    (predict,) = [a for a in actions if isinstance(a, Predict)]
    assert predict.start == 500 * MS


def test_switching_policy_mid_pause() -> None:
    core = TurnCore(VAD)
    assert [type(a) for a in core.update(1200 * MS, "u1", 0, 1000 * MS)] == [Speculate]
    core.set_config(SMART)
    assert [type(a) for a in core.update(1220 * MS, "u1", 0, 1000 * MS)] == [Predict]
    core.set_config(VAD)
    assert core.update(1400 * MS, "u1", 0, 1000 * MS) == []
    assert [type(a) for a in core.update(1500 * MS, "u1", 0, 1000 * MS)] == [EndTurn]


def test_no_speculation_when_turned_off() -> None:
    core = TurnCore(replace(SMART, speculate=False))
    assert [type(a) for a in core.update(1200 * MS, "u1", 0, 1000 * MS)] == [Predict]


def test_a_question_heard_at_the_pause_ends_the_turn_after_its_silence() -> None:
    """Smart Turn says "incomplete" (a flat voice); the pause decode heard a question."""
    core = TurnCore(SMART)  # question_silence_ns: 300 ms by default
    actions = core.update(1160 * MS, "u1", 0, 1000 * MS)
    (predict,) = [a for a in actions if isinstance(a, Predict)]
    assert core.result(predict, 0.1) == []
    assert core.heard("u1", "What is my name?", 1160 * MS, 1200 * MS) == []  # 200 ms silent
    assert core.update(1280 * MS, "u1", 0, 1000 * MS) == []
    assert core.update(1300 * MS, "u1", 0, 1000 * MS) == [
        EndTurn("u1", 1000 * MS, 1300 * MS, "question", 0.1)
    ]


def test_a_question_heard_late_ends_the_turn_at_once_and_a_statement_waits() -> None:
    core = TurnCore(SMART)
    core.update(1400 * MS, "u1", 0, 1000 * MS)
    assert core.heard("u1", "My name is Alice.", 1160 * MS, 1400 * MS) == []
    assert core.heard("u1", "Where do I live? ", 1160 * MS, 1420 * MS) == [
        EndTurn("u1", 1000 * MS, 1420 * MS, "question", None)
    ]
    statement = TurnCore(SMART)
    statement.update(1400 * MS, "u1", 0, 1000 * MS)
    assert statement.heard("u1", "My name is Alice.", 1160 * MS, 1400 * MS) == []
    later = run(statement, "u1", 0, 1000 * MS, range(1420 * MS, 1980 * MS, 20 * MS))
    assert not any(isinstance(a, EndTurn) for a in later)  # the model or the max silence


def test_a_question_of_an_earlier_pause_or_another_policy_does_not_end_the_turn() -> None:
    core = TurnCore(SMART)
    core.update(1160 * MS, "u1", 0, 1000 * MS)
    core.update(1200 * MS, "u1", 0, None)  # the user went on
    core.update(1500 * MS, "u1", 0, 1300 * MS)
    assert core.heard("u1", "Is it?", 1160 * MS, 1700 * MS) == []  # the words before 1.3 s
    assert core.heard("u2", "Is it?", 1460 * MS, 1700 * MS) == []  # another utterance
    assert core.update(1700 * MS, "u1", 0, 1300 * MS) == []
    vad = TurnCore(VAD)
    vad.update(1400 * MS, "u1", 0, 1000 * MS)
    assert vad.heard("u1", "Is it?", 1160 * MS, 1400 * MS) == []
    off = TurnCore(replace(SMART, question_silence_ns=0))
    off.update(1400 * MS, "u1", 0, 1000 * MS)
    assert off.heard("u1", "Is it?", 1160 * MS, 1400 * MS) == []


def test_words_cue_reads_the_end_of_the_words() -> None:
    assert words_cue("Where do I live? ") == "question"
    for unfinished in ("and so my fellow america", "It's like...", "I want the…", "ask not -"):
        assert words_cue(unfinished) == "unfinished", unfinished
    for sentence in ("Go forward 10 meters.", "Thank you!", "1, 2, 3. "):
        assert words_cue(sentence) == "statement", sentence
    for settled in ("1.", "Yes!", "1, 2,", "1 2, 3", "", "  "):  # a lone word: Whisper's guess
        assert words_cue(settled) == "", settled


def test_a_sentence_heard_at_the_pause_ends_the_turn_after_its_silence() -> None:
    """Smart Turn hears a read voice fall as a pause (P 0.03); the words end a sentence."""
    core = TurnCore(replace(SMART, statement_silence_ns=400 * MS))
    actions = core.update(1160 * MS, "u1", 0, 1000 * MS)
    (predict,) = [a for a in actions if isinstance(a, Predict)]
    assert core.result(predict, 0.03) == []
    assert core.heard("u1", "the true printed book.", 1160 * MS, 1250 * MS) == []
    waiting = run(core, "u1", 0, 1000 * MS, range(1260 * MS, 1400 * MS, 20 * MS))
    assert not any(isinstance(a, EndTurn) for a in waiting)  # the model is asked again
    assert core.update(1400 * MS, "u1", 0, 1000 * MS) == [
        EndTurn("u1", 1000 * MS, 1400 * MS, "statement", 0.03)
    ]
    late = TurnCore(replace(SMART, statement_silence_ns=400 * MS))
    late.update(1500 * MS, "u1", 0, 1000 * MS)  # the words come after 500 ms of silence
    assert late.heard("u1", "Thank you!", 1160 * MS, 1500 * MS) == [
        EndTurn("u1", 1000 * MS, 1500 * MS, "statement", None)
    ]
    off = TurnCore(SMART)  # statement_silence_ns=0: the words change nothing
    off.update(1500 * MS, "u1", 0, 1000 * MS)
    assert off.heard("u1", "Thank you!", 1160 * MS, 1500 * MS) == []


def test_unfinished_words_hold_the_turn_past_the_models_complete() -> None:
    """The model hears a finished voice; the pause decode heard "and so my fellow"."""
    core = TurnCore(WAIT)  # unfinished_silence_ns: 2 s by default
    (predict,) = [a for a in core.update(1160 * MS, "u1", 0, 1000 * MS) if isinstance(a, Predict)]
    assert core.result(predict, 0.99) == []  # it waits for the words
    assert core.heard("u1", "And so my fellow", 1100 * MS, 1180 * MS) == []  # they go on
    first = TurnCore(SMART)  # not waiting: the words came before the model's answer
    (asked,) = [a for a in first.update(1160 * MS, "u1", 0, 1000 * MS) if isinstance(a, Predict)]
    assert first.heard("u1", "And so my fellow", 1100 * MS, 1180 * MS) == []
    assert first.result(asked, 0.99) == []  # not taken
    held = run(core, "u1", 0, 1000 * MS, range(1200 * MS, 3000 * MS, 20 * MS))
    assert held == []  # no end, and no more questions to the model while held
    assert core.update(3000 * MS, "u1", 0, 1000 * MS) == [
        EndTurn("u1", 1000 * MS, 3000 * MS, "silence", 0.99)
    ]


def test_unfinished_words_are_forgotten_when_the_speaker_goes_on() -> None:
    core = TurnCore(SMART)
    core.update(1160 * MS, "u1", 0, 1000 * MS)
    core.heard("u1", "And so my fellow", 1100 * MS, 1180 * MS)
    assert [type(a) for a in core.update(1300 * MS, "u1", 0, None)] == [Resume]
    (predict,) = [a for a in core.update(2160 * MS, "u1", 0, 2000 * MS) if isinstance(a, Predict)]
    core.heard("u1", "And so my fellow Americans, ask not.", 2100 * MS, 2180 * MS)
    assert core.result(predict, 0.9) == [EndTurn("u1", 2000 * MS, 2160 * MS, "model", 0.9)]


def test_a_hold_shorter_than_the_max_silence_does_not_shorten_it() -> None:
    core = TurnCore(replace(SMART, unfinished_silence_ns=500 * MS))  # max_silence 1000 ms
    core.update(1160 * MS, "u1", 0, 1000 * MS)
    core.heard("u1", "And so my fellow", 1100 * MS, 1180 * MS)
    assert run(core, "u1", 0, 1000 * MS, range(1200 * MS, 2000 * MS, 20 * MS)) == []
    assert [type(a) for a in core.update(2000 * MS, "u1", 0, 1000 * MS)] == [EndTurn]


def test_unfinished_words_change_nothing_when_off_or_under_vad() -> None:
    off = TurnCore(replace(SMART, unfinished_silence_ns=0))
    (predict,) = [a for a in off.update(1160 * MS, "u1", 0, 1000 * MS) if isinstance(a, Predict)]
    off.heard("u1", "And so my fellow", 1100 * MS, 1180 * MS)
    assert [type(a) for a in off.result(predict, 0.99)] == [EndTurn]
    vad = TurnCore(VAD)
    vad.update(1200 * MS, "u1", 0, 1000 * MS)
    vad.heard("u1", "And so my fellow", 1100 * MS, 1200 * MS)
    assert [type(a) for a in vad.update(1500 * MS, "u1", 0, 1000 * MS)] == [EndTurn]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(1, 15)), min_size=1, max_size=40),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40),
    st.sampled_from(["vad", "smart"]),
    st.sampled_from(["", "Is it?", "It is.", "It is so"]),
)
def test_properties(
    segments: list[tuple[bool, int]], probs: list[float], policy: str, heard: str
) -> None:
    """At most one EndTurn, never before ``pause_ns`` of silence, never after the max wait;
    every Resume follows a Speculate; a turn never ends while voiced (the pause decode's
    words, ``heard``, arrive with every model question)."""
    config = replace(SMART, detection="vad" if policy == "vad" else "smart")
    core = TurnCore(config)
    now, silence, ends, speculating = 0, None, 0, False
    answers = itertools.cycle(probs)
    for voiced, steps in segments:
        for _ in range(steps * 3):
            now += 20 * MS
            if voiced:
                silence = None
            elif silence is None:
                silence = now
            actions = core.update(now, "u", 0, silence)
            for action in list(actions):
                if isinstance(action, Predict):
                    actions += core.result(action, next(answers))
                    if heard:
                        actions += core.heard("u", heard, action.end, now)
            for action in actions:
                if isinstance(action, Speculate):
                    speculating = True
                elif isinstance(action, Resume):
                    assert speculating
                    speculating = False
                elif isinstance(action, EndTurn):
                    ends += 1
                    assert silence is not None
                    assert config.pause_ns <= now - silence <= config.max_wait_ns
    assert ends <= 1
    if ends == 0 and silence is not None:
        assert now - silence < config.max_wait_ns
