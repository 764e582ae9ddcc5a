"""ResponderCore: transcript events and explicit times in, actions out (no loop, no model)."""

from __future__ import annotations

from streamkit.core.clock import NS_PER_MS, Nanos
from streamkit.core.events import (
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
    TurnUpdate,
    Word,
)
from streamkit.lm.responder_core import ResponderCore
from streamkit.lm.responder_types import (
    Answer,
    AnswerState,
    Cancel,
    Commit,
    Prefill,
    Release,
    ResponderAction,
    ResponderConfig,
)

MS = NS_PER_MS


def words(text: str, start: Nanos) -> list[Word]:
    return [
        Word(t, start + i * 250 * MS, start + (i + 1) * 250 * MS - 30 * MS, 0.9)
        for i, t in enumerate(text.split())
    ]


def core(**options: object) -> ResponderCore:
    return ResponderCore(ResponderConfig(**options), lambda text: len(text.split()))  # type: ignore[arg-type]


def said(
    c: ResponderCore, uid: str, text: str, start: Nanos
) -> tuple[list[ResponderAction], Nanos]:
    """Speech, a partial, the last final: the actions of the final and its time."""
    ws = words(text, start)
    c.push(SpeechStarted(uid, start), start)
    c.push(TranscriptPartial(uid, text, ws), ws[-1].end + 20 * MS)
    c.push(SpeechStopped(uid, ws[-1].end), ws[-1].end + 300 * MS)
    at = ws[-1].end + 400 * MS
    return c.push(TranscriptFinal(uid, text, ws, ws[0].start, ws[-1].end, True), at), at


def answer(actions: list[ResponderAction]) -> AnswerState:
    [state] = [a.state for a in actions if isinstance(a, Answer)]
    return state


def text_of(c: ResponderCore, state: AnswerState) -> str:
    return " ".join(w.text for w in state.words)


def test_a_last_final_starts_an_answer_and_its_end_commits_the_turn() -> None:
    c = core()
    actions, at = said(c, "u1", "what am I holding", 1_000 * MS)
    state = answer(actions)
    assert (state.response_id, state.utt.uid, state.received) == ("resp-0", "u1", at)
    assert not state.speculative
    assert c.answering
    request = c.request(state)
    assert request.messages[-1].content.endswith("what am I holding")
    assert c.prefill_request(at) is None  # the model is busy
    done = c.finish(state, " A red cup. ")
    assert not done.dropped
    assert not done.cancelled
    [commit, prefill] = done.actions
    assert isinstance(commit, Commit)
    assert isinstance(prefill, Prefill)
    assert (commit.turn.user, commit.turn.assistant) == ("what am I holding", "A red cup.")
    assert list(c.history) == [commit.turn]
    assert c.active is None
    prefix = c.prefill_request(at + 1)  # the next turn's stable prefix, once
    assert prefix is not None
    assert prefix.max_tokens == 1
    assert any(m.role == "assistant" and m.content == "A red cup." for m in prefix.messages)
    assert c.prefill_request(at + 2) is None


def test_partials_ask_for_a_prefill_of_the_words_so_far() -> None:
    c = core()
    ws = words("tell me more", 0)
    assert c.push(SpeechStarted("u1", 0), 0) == []
    assert c.push(TranscriptPartial("u1", "", ws[:2]), 600 * MS) == [Prefill()]
    request = c.prefill_request(600 * MS)
    assert request is not None
    assert request.messages[-1].content.endswith("tell me")
    assert core(prefill_partials=False).push(TranscriptPartial("u1", "", ws), 0) == []


def test_barge_in_cancels_and_carries_the_interrupted_words() -> None:
    c = core()
    first = answer(said(c, "u1", "tell me a story", 0)[0])
    epoch = c.epoch
    out = c.push(SpeechStarted("u2", 2_000 * MS), 2_000 * MS)
    assert out == [Cancel(first.response_id, "barge-in", False)]
    assert c.epoch == epoch + 1
    assert not c.current(first)
    done = c.finish(first, "Once upon")
    assert done.cancelled
    assert done.actions == []
    assert not c.history
    second, _ = said(c, "u2", "stop that", 2_000 * MS)
    assert text_of(c, answer(second)) == "tell me a story stop that"
    c.finish(answer(second), "Okay.")
    assert [t.user for t in c.history] == ["tell me a story stop that"]


def test_client_cancel_keeps_the_turn_with_what_was_said() -> None:
    c = core()
    state = answer(said(c, "u1", "count to forty", 0)[0])
    running, out = c.cancel("client")
    assert running
    assert out == [Cancel(state.response_id, "client", False)]
    assert c.cancel("client") == (False, [])  # already cancelled
    done = c.finish(state, "one two")
    assert done.cancelled
    assert c.history[0].assistant == "one two"


def test_a_new_final_while_answering_replaces_the_answer() -> None:
    c = core()
    first = answer(said(c, "u1", "first question", 0)[0])
    ws = words("second one", 3_000 * MS)
    out = c.push(TranscriptFinal("u2", "", ws, ws[0].start, ws[-1].end, True), 4_000 * MS)
    assert out[0] == Cancel(first.response_id, "new utterance", False)
    assert text_of(c, answer(out)) == "first question second one"


def test_speculation_at_a_pause_is_released_by_the_same_final() -> None:
    c = core()
    ws = words("what is the weather", 0)
    c.push(SpeechStarted("u1", 0), 0)
    c.push(TranscriptPartial("u1", "", ws), ws[-1].end + 20 * MS)
    spec = answer(c.push(TurnUpdate("u1", "pause", ws[-1].end), ws[-1].end + 96 * MS))
    assert spec.speculative
    assert not c.answering
    assert spec.request is not None
    assert c.request(spec) is spec.request
    at = ws[-1].end + 300 * MS
    c.push(SpeechStopped("u1", ws[-1].end), at)
    out = c.push(TranscriptFinal("u1", "", ws, ws[0].start, ws[-1].end, True), at)
    assert out == [Release(spec.response_id)]
    assert not spec.speculative
    assert spec.received == at
    assert c.answering
    assert not c.finish(spec, "Sunny.").dropped
    assert c.history[0].user == "what is the weather"


def test_resume_drops_the_speculation_silently() -> None:
    c = core()
    ws = words("what is the", 0)
    c.push(TranscriptPartial("u1", "", ws), ws[-1].end)
    spec = answer(c.push(TurnUpdate("u1", "pause", ws[-1].end), ws[-1].end + 96 * MS))
    running, _ = c.cancel("client")
    assert not running  # a held speculation is not an answer the client saw
    c2 = core()
    c2.push(TranscriptPartial("u1", "", ws), ws[-1].end)
    spec = answer(c2.push(TurnUpdate("u1", "pause", ws[-1].end), ws[-1].end + 96 * MS))
    out = c2.push(TurnUpdate("u1", "resume", ws[-1].end + 400 * MS), ws[-1].end + 400 * MS)
    assert out == [Cancel(spec.response_id, "resume", True), Prefill()]
    done = c2.finish(spec, "")
    assert done.dropped
    assert done.actions == []
    assert not c2.history


def test_new_words_during_a_pause_restart_the_speculation_when_it_ended() -> None:
    c = core()
    ws = words("turn on the light", 0)
    c.push(TranscriptPartial("u1", "", ws), ws[-1].end)
    spec = answer(c.push(TurnUpdate("u1", "pause", ws[-1].end), ws[-1].end + 96 * MS))
    fixed = [*ws[:-1], Word("lights", ws[-1].start, ws[-1].end, 0.9)]
    out = c.push(TranscriptPartial("u1", "", fixed), ws[-1].end + 150 * MS)
    assert out == [Cancel(spec.response_id, "words changed", True), Prefill()]
    done = c.finish(spec, "")
    assert done.dropped
    again = answer(done.actions)
    assert again.speculative
    assert text_of(c, again).endswith("lights")
    # the same words again change nothing
    assert c.push(TranscriptPartial("u1", "", fixed), ws[-1].end + 200 * MS) == [Prefill()]


def test_no_speculation_when_off_or_manual() -> None:
    ws = words("hello there", 0)
    for c in (core(speculate=False), core()):
        if c.config.speculate:
            c.auto_answer = False
        c.push(TranscriptPartial("u1", "", ws), ws[-1].end)
        assert c.push(TurnUpdate("u1", "pause", ws[-1].end), ws[-1].end + 96 * MS) == []


def test_manual_turns_wait_for_respond_and_the_finals_named() -> None:
    c = core()
    c.auto_answer = False
    actions, at = said(c, "u1", "capital of france", 0)
    assert actions == []
    c.add_text("and of spain", at)
    ws = words("please", at)
    c.push(SpeechStarted("u2", at), at)
    c.respond(("u2",), "Answer in French.", 5)
    assert c.start_requested(at) == []  # u2's final has not arrived
    out = c.push(TranscriptFinal("u2", "", ws, ws[0].start, ws[-1].end, True), at + 1)
    state = answer(out)
    assert text_of(c, state) == "capital of france and of spain please"
    request = c.request(state)
    assert request.messages[0].content.startswith("Answer in French.")
    assert request.max_tokens == 5


def test_discarded_utterances_are_never_answered_and_client_cancel_drops_a_request() -> None:
    c = core()
    c.auto_answer = False
    said(c, "u1", "forget this", 0)
    said(c, "u2", "keep this", 2_000 * MS)
    c.discard(("u1",))
    c.respond()
    assert text_of(c, answer(c.start_requested(5_000 * MS))) == "keep this"
    c2 = core()
    c2.auto_answer = False
    c2.respond(("u9",))
    c2.cancel("client")
    assert c2.push(TranscriptFinal("u9", "", words("hi", 0), 0, 1, True), 1) == []
    c3 = core()
    c3.auto_answer = False
    c3.respond(("u9",))
    c3.cancel("barge-in")  # a barge-in keeps the request (its own speech, seen late)
    assert answer(c3.push(TranscriptFinal("u9", "", words("hi", 0), 0, 1, True), 1))


def test_set_instructions_restales_the_prefix() -> None:
    c = core()
    assert c.set_instructions("Be terse.", 12) == [Prefill()]
    assert c.set_instructions("Be terse.", 12) == []
    assert c.config.max_tokens == 12
    prefix = c.prefill_request(0)
    assert prefix is not None
    assert prefix.messages[0].content.startswith("Be terse.")


def test_a_pause_decode_final_then_partial_keeps_the_speculation() -> None:
    """The ASR's pause pass commits some words (a final) and keeps the rest tentative (a
    partial): the words are the same, so the speculation goes on, and the last final that
    commits the rest releases it."""
    c = core()
    ws = words("turn on the light", 0)
    c.push(TranscriptPartial("u1", "", ws), ws[-1].end)
    spec = answer(c.push(TurnUpdate("u1", "pause", ws[-1].end), ws[-1].end + 96 * MS))
    at = ws[-1].end + 250 * MS
    final = TranscriptFinal("u1", "", ws[:3], ws[0].start, ws[2].end, False)
    assert c.push(final, at) == [Prefill()]
    assert c.push(TranscriptPartial("u1", "", ws[3:]), at) == [Prefill()]
    assert not spec.cancelled
    last = TranscriptFinal("u1", "", ws[3:], ws[3].start, ws[3].end, True)
    assert c.push(last, at + 100 * MS) == [Release(spec.response_id)]
    # a pause pass that heard another last word replaces it
    c = core()
    c.push(TranscriptPartial("u1", "", ws), ws[-1].end)
    spec = answer(c.push(TurnUpdate("u1", "pause", ws[-1].end), ws[-1].end + 96 * MS))
    c.push(final, at)
    other = [Word("lights", ws[3].start, ws[3].end, 0.9)]
    out = c.push(TranscriptPartial("u1", "", other), at)
    assert out[0] == Cancel(spec.response_id, "words changed", True)


def test_past_max_history_the_oldest_half_goes_at_once() -> None:
    """The history is a block-trimmed list, not a sliding window: between trims it only
    grows at its end, so the prompt's cached history keeps its first turn."""
    c = core(max_history=4)
    users: list[list[str]] = []
    for i in range(7):
        actions, _ = said(c, f"u{i}", f"question {i}", (i + 1) * 10_000 * MS)
        c.finish(answer(actions), f"answer {i}")
        users.append([t.user for t in c.history])
    assert users[3] == ["question 0", "question 1", "question 2", "question 3"]
    assert users[4] == ["question 3", "question 4"]  # 5 > 4: down to the newest 2
    assert users[6] == ["question 3", "question 4", "question 5", "question 6"]
