"""Answers on request (a Realtime client's manual turns, typed turns, per-answer instructions),
on the virtual clock with a backend that charges virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from streamkit import LoopClock
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.events import Observation
from streamkit.lm import Responder, ResponderConfig, ScriptedBackend
from tests.lm.test_responder import Collect, deltas, dones, run_script, utterance

MS = NS_PER_MS
S = NS_PER_S

pytestmark = pytest.mark.looptime


async def _run(
    events: list,
    backend: ScriptedBackend,
    at: list[tuple[Nanos, Callable[[Responder], None]]],
    config: ResponderConfig | None = None,
    manual: bool = True,
) -> tuple[Responder, Collect]:
    """Run the script; call each ``fn(responder)`` at its absolute time ``t``."""
    # an observation at 9 s keeps the input open until every call was made
    keepalive = (9 * S, "vision", Observation(9 * S, [], 0.0, 0.5, [], 8, 8))
    pipe, responder, sink = run_script([*events, keepalive], backend, config)
    responder.auto_answer = not manual
    clock = LoopClock()
    start = clock.now()

    async def calls() -> None:
        for t, fn in at:
            await clock.sleep_until(start + t)
            fn(responder)

    async with asyncio.TaskGroup() as group:
        group.create_task(calls())
        await pipe.run()
    return responder, sink


async def test_manual_turns_answer_only_when_asked() -> None:
    backend = ScriptedBackend(reply="Paris.", token_ns=10 * MS)
    events = utterance("u1", "capital of france please", 1 * S)
    _, sink = await _run(events, backend, [(4 * S, lambda r: r.respond())], manual=True)
    [(t, done)] = dones(sink)
    assert t >= 4 * S  # not at the end of speech: at the request
    assert done.payload.text == "Paris."
    assert "capital of france please" in backend.requests[-1].messages[-1].content


async def test_a_request_waits_for_the_final_it_names() -> None:
    backend = ScriptedBackend(reply="Yes.", token_ns=10 * MS)
    events = utterance("u1", "is it raining now", 1 * S)
    last_final_at = events[-1][0]
    # asked right after the commit, before the ASR's last final of u1 arrives
    _, sink = await _run(
        events, backend, [(last_final_at - 200 * MS, lambda r: r.respond(("u1",)))]
    )
    [(first, _)] = deltas(sink)[:1]
    assert first >= last_final_at
    assert "is it raining now" in backend.requests[-1].messages[-1].content


async def test_typed_text_then_respond_and_per_answer_instructions() -> None:
    backend = ScriptedBackend(reply="Hello there.", token_ns=10 * MS)

    def typed(r: Responder) -> None:
        r.add_text("what is two plus two", 2 * S)
        r.respond((), "Answer in French.", 5)

    _, sink = await _run([], backend, [(2 * S, typed)], manual=False)
    [(_, done)] = dones(sink)
    assert done.payload.utterance_id.startswith("text-")
    request = backend.requests[-1]
    assert request.messages[0].content.startswith("Answer in French.")
    assert "what is two plus two" in request.messages[-1].content
    assert request.max_tokens == 5


async def test_session_instructions_and_typed_text_join_the_next_spoken_turn() -> None:
    backend = ScriptedBackend(reply="Okay.", token_ns=10 * MS)

    def setup(r: Responder) -> None:
        r.set_instructions("Be terse.", 12)
        r.add_text("my name is Ada", 500 * MS)

    events = utterance("u1", "what is my name", 1 * S)
    responder, sink = await _run(events, backend, [(500 * MS, setup)], manual=False)
    assert len(dones(sink)) == 1  # auto mode: the spoken turn is answered by itself
    request = backend.requests[-1]
    assert request.messages[0].content.startswith("Be terse.")
    assert request.max_tokens == 12
    assert "my name is Ada what is my name" in request.messages[-1].content
    responder.set_instructions(None)
    assert responder.config.fusion.system_prompt == ResponderConfig().fusion.system_prompt


async def test_discarded_utterances_are_never_answered() -> None:
    backend = ScriptedBackend(reply="No.", token_ns=10 * MS)
    events = [*utterance("u1", "forget this please", 1 * S), *utterance("u2", "keep this", 4 * S)]
    _, sink = await _run(
        events,
        backend,
        [(1500 * MS, lambda r: r.discard(("u1",))), (7 * S, lambda r: r.respond())],
    )
    [_] = dones(sink)
    prompt = backend.requests[-1].messages[-1].content
    assert "keep this" in prompt
    assert "forget" not in prompt


async def test_cancel_drops_a_request_that_has_not_started() -> None:
    backend = ScriptedBackend(reply="Late.", token_ns=10 * MS)
    events = utterance("u1", "tell me something", 1 * S)
    last = events[-1][0]

    def ask_then_cancel(r: Responder) -> None:
        r.respond(("u1",))
        assert r.cancel("client") is False  # nothing was running yet

    _, sink = await _run(events, backend, [(last - 100 * MS, ask_then_cancel)])
    assert dones(sink) == []


async def test_a_request_survives_the_late_start_of_the_speech_it_waits_for() -> None:
    """The commit names an utterance whose SpeechStarted reaches the responder only after the
    request (events travel through tees): that start is not a barge-in on the request."""
    backend = ScriptedBackend(reply="Sure.", token_ns=10 * MS)
    events = utterance("u1", "say something nice", 1 * S)
    _, sink = await _run(events, backend, [(500 * MS, lambda r: r.respond(("u1",)))])
    [(t, done)] = dones(sink)
    assert t >= events[-1][0]
    assert done.payload.text == "Sure."
