"""Speculative answers on the virtual clock: started at a pause, released only when the turn
is confirmed, dropped by epoch (silently) when the user goes on."""

from __future__ import annotations

from typing import Any

import pytest

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.events import (
    ResponseHeld,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
    TurnUpdate,
    Word,
)
from streamkit.lm import ResponderConfig, ScriptedBackend
from tests.lm.test_responder import ANSWER, deltas, dones, run_script

MS = NS_PER_MS
S = NS_PER_S


def words(text: str, start: Nanos) -> list[Word]:
    return [
        Word(t, start + i * 250 * MS, start + (i + 1) * 250 * MS - 30 * MS, 0.9)
        for i, t in enumerate(text.split())
    ]


def turn(uid: str, text: str, start: Nanos, confirm_ms: int = 300) -> list[tuple[Nanos, str, Any]]:
    """Speech, a partial, a pause 160 ms after the speech (speculation), then after
    ``confirm_ms`` the end of turn: SpeechStopped and the last final with the same words."""
    ws = words(text, start)
    end = ws[-1].end
    pause = end + 160 * MS
    return [
        (start, "transcript", SpeechStarted(uid, start)),
        (end + 20 * MS, "transcript", TranscriptPartial(uid, text, ws)),
        (pause, "transcript", TurnUpdate(uid, "pause", end)),
        (pause + confirm_ms * MS, "transcript", TurnUpdate(uid, "end", end, "model", 0.9)),
        (pause + confirm_ms * MS, "transcript", SpeechStopped(uid, end)),
        (
            pause + confirm_ms * MS + 1 * MS,
            "transcript",
            TranscriptFinal(uid, text, ws, ws[0].start, end, True),
        ),
    ]


@pytest.mark.looptime
async def test_speculation_is_held_until_the_turn_ends_then_released_at_once() -> None:
    backend = ScriptedBackend(reply=ANSWER, token_ns=10 * MS)
    events = turn("u1", "what is the weather like", 1 * S)
    final_at = events[-1][0]
    pipe, responder, sink = run_script(events, backend)
    await pipe.run()
    got = deltas(sink)
    assert got  # answered
    assert all(t >= final_at for t, _ in got)  # nothing released before the turn ended
    assert "".join(p.payload.text for _, p in got) == ANSWER
    assert [p.payload.index for _, p in got] == list(range(40))
    # the first 8 tokens were ready and held: they go out the moment the final arrives
    assert got[0][0] == final_at
    assert len([t for t, _ in got if t == final_at]) == 8
    assert len(backend.requests) == 1  # one generation: the speculation became the answer
    counters = pipe.metrics.counters
    assert counters["lm.scripted.speculations"].value == 1
    assert counters["lm.scripted.speculations_used"].value == 1
    assert "lm.scripted.speculations_dropped" not in counters
    ((_, done),) = dones(sink)
    assert not done.payload.cancelled
    assert done.payload.text == ANSWER
    assert [t.user for t in responder.history] == ["what is the weather like"]
    eos = pipe.metrics.histograms["lm.scripted.eos_to_first_token"].values()[0]
    assert eos == final_at - events[-2][2].t


@pytest.mark.looptime
async def test_user_goes_on_the_speculation_is_dropped_silently() -> None:
    backend = ScriptedBackend(reply=ANSWER, token_ns=10 * MS)
    first = words("what is the", 1 * S)
    second = words("weather like today", first[-1].end + 400 * MS)
    pause_t = first[-1].end
    ws = first + second
    events: list[tuple[Nanos, str, Any]] = [
        (1 * S, "transcript", SpeechStarted("u1", 1 * S)),
        (pause_t + 20 * MS, "transcript", TranscriptPartial("u1", "what is the", first)),
        (pause_t + 160 * MS, "transcript", TurnUpdate("u1", "pause", pause_t)),
        (second[0].start, "transcript", TurnUpdate("u1", "resume", second[0].start)),
        (second[-1].end + 20 * MS, "transcript", TranscriptPartial("u1", "", ws)),
        (second[-1].end + 600 * MS, "transcript", SpeechStopped("u1", second[-1].end)),
        (
            second[-1].end + 601 * MS,
            "transcript",
            TranscriptFinal("u1", "x", ws, ws[0].start, ws[-1].end, True),
        ),
    ]
    final_at = events[-1][0]
    pipe, responder, sink = run_script(events, backend)
    await pipe.run()
    got = deltas(sink)
    assert all(t >= final_at for t, _ in got)
    assert "".join(p.payload.text for _, p in got) == ANSWER
    ((_, done),) = dones(sink)  # only the real answer: the client never heard of the speculation
    assert done.payload.response_id == got[0][1].payload.response_id
    counters = pipe.metrics.counters
    assert counters["lm.scripted.speculations_dropped"].value == 1
    assert counters["lm.scripted.wasted_tokens"].value == 8  # it stopped at the held limit
    wasted = counters["lm.scripted.wasted_compute_ns"].value
    assert wasted >= 8 * 10 * MS  # the tokens' charged time, plus its prompt tail
    assert "lm.scripted.cancelled" not in counters  # not a barge-in
    assert backend.requests[0].messages[-1].content.endswith("what is the")
    assert backend.requests[-1].messages[-1].content.endswith("weather like today")
    assert len(responder.history) == 1
    assert responder.history[0].user == "what is the weather like today"


@pytest.mark.looptime
async def test_different_final_words_replace_the_speculation() -> None:
    backend = ScriptedBackend(reply=lambda r: r.messages[-1].content.split()[-1], token_ns=10 * MS)
    events = turn("u1", "turn on the light", 1 * S)
    at, port, final = events[-1]
    fixed = [*final.words[:-1], Word("lights", final.words[-1].start, final.end, 0.9)]
    events[-1] = (at, port, TranscriptFinal("u1", "", fixed, final.start, final.end, True))
    pipe, _, sink = run_script(events, backend)
    await pipe.run()
    assert "".join(p.payload.text for _, p in deltas(sink)).strip() == "lights"
    counters = pipe.metrics.counters
    assert counters["lm.scripted.speculations_dropped"].value == 1
    assert "lm.scripted.speculations_used" not in counters


@pytest.mark.looptime
async def test_no_speculation_when_off() -> None:
    backend = ScriptedBackend(reply=ANSWER, token_ns=10 * MS)
    events = turn("u1", "what is the weather like", 1 * S)
    config = ResponderConfig(speculate=False)
    pipe, _, sink = run_script(events, backend, config)
    await pipe.run()
    got = deltas(sink)
    assert "".join(p.payload.text for _, p in got) == ANSWER
    assert got[0][0] > events[-1][0]  # paid the first token after the final
    assert "lm.scripted.speculations" not in pipe.metrics.counters


@pytest.mark.looptime
@pytest.mark.parametrize("announce", [False, True])
async def test_a_waiting_speculation_announces_what_it_holds_only_when_asked(
    announce: bool,
) -> None:
    events = turn("u1", "what is the weather like", 1 * S)
    backend = ScriptedBackend(reply=ANSWER, token_ns=10 * MS)
    pipe, _, sink = run_script(events, backend, ResponderConfig(announce_held=announce))
    await pipe.run()
    held_events = [(t, p.payload) for t, p in sink.got if isinstance(p.payload, ResponseHeld)]
    assert "".join(p.payload.text for _, p in deltas(sink)) == ANSWER
    if not announce:
        assert held_events == []
        return
    # one per held token, each the text so far, all before the turn was confirmed
    assert len(held_events) == 8
    pause_at, final_at = events[2][0], events[-1][0]
    for i, (at, held) in enumerate(held_events):
        assert pause_at < at < final_at
        assert held.utterance_id == "u1"
        assert not held.complete
        assert ANSWER.startswith(held.text)
        assert len(held.text) > (len(held_events[i - 1][1].text) if i else 0)
    assert held_events[-1][1].text == "".join(p.payload.text for _, p in deltas(sink)[:8])


@pytest.mark.looptime
async def test_a_short_answer_held_whole_is_announced_complete() -> None:
    backend = ScriptedBackend(reply="It is sunny.", token_ns=10 * MS)
    events = turn("u1", "what is the weather like", 1 * S)
    pipe, _, sink = run_script(events, backend, ResponderConfig(announce_held=True))
    await pipe.run()
    held = [p.payload for _, p in sink.got if isinstance(p.payload, ResponseHeld)]
    assert held[-1].complete
    assert held[-1].text == "It is sunny."
    assert not any(h.complete for h in held[:-1])
