"""Turn handling on the virtual clock (looptime) with a backend that charges virtual time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from streamkit import LoopClock, Packet, Pipeline, Policy, StageContext
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.events import (
    Detection,
    Observation,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
    Word,
)
from streamkit.lm import Responder, ResponderConfig, ScriptedBackend
from streamkit.lm.backend import approx_token_count
from streamkit.lm.scripted import render_plain

MS = NS_PER_MS
S = NS_PER_S
ANSWER = " ".join(f"word{i}" for i in range(40))


@dataclass
class Script:
    """A source stage emitting (time ns, stream, payload) at absolute shared-clock times
    (the payloads' own times are absolute too; setup — e.g. a prefill — takes < 1 s)."""

    events: list[tuple[Nanos, str, Any]]
    name: str = "script"

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        seqs: dict[str, int] = {}
        for at, port, payload in self.events:
            assert ctx.clock.now() <= at
            await ctx.clock.sleep_until(at)
            uid = getattr(payload, "utterance_id", None)
            seq = seqs[port] = seqs.get(port, -1) + 1
            await ctx.output(port).put(Packet(port, seq, ctx.clock.now(), 0, payload, 0, uid))


@dataclass
class Collect:
    name: str = "sink"
    got: list[tuple[Nanos, Packet[Any]]] = field(default_factory=list)
    base: Nanos = 0

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        self.base = ctx.base_time
        async for item in ctx.input():
            assert isinstance(item, Packet)
            self.got.append((ctx.clock.now(), item))


def utterance(uid: str, text: str, start: Nanos) -> list[tuple[Nanos, str, Any]]:
    """SpeechStarted, a partial, a committed final, the last final, SpeechStopped."""
    tokens = text.split()
    step = 250 * MS
    ws = [
        Word(t, start + i * step, start + (i + 1) * step - 30 * MS, 0.9)
        for i, t in enumerate(tokens)
    ]
    end = ws[-1].end
    half = len(ws) // 2
    return [
        (start, "transcript", SpeechStarted(uid, start)),
        (ws[half - 1].end + 100 * MS, "transcript", TranscriptPartial(uid, text, ws[:half])),
        (
            ws[half].end + 150 * MS,
            "transcript",
            TranscriptFinal(
                uid, " ".join(tokens[:half]), ws[:half], ws[0].start, ws[half - 1].end, False
            ),
        ),
        (end + 300 * MS, "transcript", SpeechStopped(uid, end)),
        (
            end + 400 * MS,
            "transcript",
            TranscriptFinal(uid, " ".join(tokens[half:]), ws[half:], ws[half].start, end, True),
        ),
    ]


def run_script(
    events: list[tuple[Nanos, str, Any]],
    backend: ScriptedBackend,
    config: ResponderConfig | None = None,
) -> tuple[Pipeline, Responder, Collect]:
    pipe = Pipeline(LoopClock())
    transcript = pipe.edge("transcript", 16, Policy.BLOCK)
    vision = pipe.edge("vision", 1, Policy.LATEST)
    out = pipe.edge("response", 64, Policy.BLOCK)
    responder = Responder(backend, config)
    sink = Collect()
    pipe.add(Script(events), outputs={"transcript": transcript, "vision": vision})
    pipe.add(responder, {"transcript": transcript, "vision": vision}, {"out": out})
    pipe.add(sink, {"in": out})
    return pipe, responder, sink


def deltas(sink: Collect, rid: str | None = None) -> list[tuple[Nanos, Packet[Any]]]:
    return [
        (t, p)
        for t, p in sink.got
        if isinstance(p.payload, ResponseDelta) and (rid is None or p.payload.response_id == rid)
    ]


def dones(sink: Collect) -> list[tuple[Nanos, Packet[Any]]]:
    return [(t, p) for t, p in sink.got if isinstance(p.payload, ResponseDone)]


@pytest.mark.looptime
async def test_answers_a_final_utterance_with_lineage_and_metrics() -> None:
    backend = ScriptedBackend(reply="It is a red cup.", token_ns=10 * MS)
    pipe, _, sink = run_script(utterance("u1", "what am I holding now", 1 * S), backend)
    await pipe.run()
    text = "".join(p.payload.text for _, p in deltas(sink))
    assert text == "It is a red cup."
    [(_, done)] = dones(sink)
    assert done.payload.text == text
    assert not done.payload.cancelled
    assert done.payload.completion_tokens == 5
    assert all(p.lineage == "u1" for _, p in sink.got)
    assert [p.payload.index for _, p in deltas(sink)] == list(range(5))
    marks = pipe.metrics.lineage.get("u1")
    assert marks["lm.first_token"] < marks["lm.done"]
    hist = pipe.metrics.histograms["lm.scripted.eos_to_first_token"]
    assert hist.count == 1
    # end of speech → final arrives 400 ms later; one token of 10 ms plus the uncached tail
    assert 400 * MS < hist.values()[0] < 500 * MS
    assert pipe.metrics.gauges["lm.scripted.tokens_per_s"].value == pytest.approx(100.0)
    # the user's words reached the model with their times, after the system prompt
    request = backend.requests[0]
    assert request.messages[0].role == "system"
    assert request.messages[-1].content.endswith("what am I holding now")


@pytest.mark.looptime
async def test_barge_in_cancels_within_one_audio_chunk_and_drops_stale_tokens() -> None:
    backend = ScriptedBackend(reply=ANSWER, token_ns=25 * MS)
    first = utterance("u1", "tell me a long story please", 1 * S)
    final_at = first[-1][0]
    barge_at = final_at + 300 * MS  # mid-answer: 40 tokens take 1 s
    events = [*first, *utterance("u2", "stop that", barge_at)]
    pipe, responder, sink = run_script(events, backend)
    await pipe.run()
    r0 = deltas(sink, "resp-0")
    assert 3 <= len(r0) < 40
    done0 = next(p for _, p in dones(sink) if p.payload.response_id == "resp-0")
    t_done0 = next(t for t, p in dones(sink) if p is done0)
    assert done0.payload.cancelled
    assert t_done0 - barge_at <= 20 * MS  # within one audio chunk
    assert all(t <= barge_at for t, _ in r0)  # nothing of the old answer after barge-in
    assert done0.payload.text == "".join(p.payload.text for _, p in r0)
    assert all(p.epoch < done0.epoch for _, p in r0)
    # the second utterance is answered in full, in the new epoch
    r1 = deltas(sink, "resp-1")
    assert "".join(p.payload.text for _, p in r1) == ANSWER
    assert all(p.epoch >= done0.epoch for _, p in r1)
    assert pipe.metrics.counters["lm.scripted.cancelled"].value == 1
    # the interrupted words join the next utterance (with their times), not the history
    second_prompt = backend.requests[1].messages[-1].content
    assert second_prompt.startswith("tell me a long story please stop that")
    answers = [m for m in backend.requests[1].messages if m.role == "assistant"]
    assert len(answers) == len(responder.config.fusion.examples)  # no truncated turn
    [turn] = responder.history
    assert turn.user == "tell me a long story please stop that"
    assert turn.assistant == ANSWER


@pytest.mark.looptime
async def test_client_cancel_stops_the_answer() -> None:
    backend = ScriptedBackend(reply=ANSWER, token_ns=25 * MS)
    events = utterance("u1", "count to forty", 1 * S)
    pipe, responder, sink = run_script(events, backend)

    @dataclass
    class Canceller:
        name: str = "canceller"

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            await ctx.clock.sleep_until(events[-1][0] + 200 * MS)
            assert responder.answering
            assert responder.cancel()
            assert not responder.cancel()

    pipe.add(Canceller())
    await pipe.run()
    [(t_done, done)] = dones(sink)
    assert done.payload.cancelled
    assert t_done == events[-1][0] + 200 * MS
    assert all(t <= t_done for t, _ in deltas(sink))
    assert len(deltas(sink)) < 40
    # a client cancel keeps the turn with what was said so far (nothing is carried)
    [turn] = responder.history
    assert turn.user == "count to forty"
    assert turn.assistant == done.payload.text.strip()


@pytest.mark.looptime
async def test_prefill_while_speaking_leaves_only_the_tail() -> None:
    """With prefill the prompt is evaluated before the final arrives: first token sooner."""
    text = "describe what you can see in front of me right now please"

    async def latency(prefill: bool) -> tuple[Nanos, ScriptedBackend]:
        backend = ScriptedBackend(reply="Sure.", token_ns=10 * MS, prompt_token_ns=4 * MS)
        pipe, _, _ = run_script(
            utterance("u1", text, LoopClock().now() + 3 * S),  # after setup's prefix prefill
            backend,
            ResponderConfig(prefill=prefill),
        )
        await pipe.run()
        return pipe.metrics.histograms["lm.scripted.final_to_first_token"].values()[0], backend

    cold, _ = await latency(False)
    warm, backend = await latency(True)
    assert len(backend.prefills) >= 2
    assert cold > 250 * MS  # the whole prompt is evaluated after the final
    assert warm < cold / 3


@pytest.mark.looptime
async def test_a_cold_prefix_prefill_does_not_hold_the_pipeline_start() -> None:
    """The system prompt's prefill costs seconds on a cold backend: the other stages start at
    once (the script's first event is due 200 ms in; ``Script`` asserts it is not late) and
    the first answer comes after the prefill, complete."""
    backend = ScriptedBackend(reply="Paris.", token_ns=10 * MS, prompt_token_ns=50 * MS)
    start = LoopClock().now()
    pipe, _, sink = run_script(
        utterance("u1", "what is the capital of France", start + 200 * MS), backend
    )
    await pipe.run()
    [prefix, *_] = backend.prefills
    assert approx_token_count(render_plain(prefix)) * 50 * MS > 1 * S  # a slow prefill
    [(_, done)] = dones(sink)
    assert done.payload.text.strip() == "Paris."


@pytest.mark.looptime
async def test_observation_during_the_utterance_reaches_the_prompt() -> None:
    def seen(label: str, t: Nanos) -> Observation:
        return Observation(t, [Detection(label, 0.9, (0, 0, 5, 5))], 0.1, 0.5, ["red"], 64, 48)

    utt = utterance("u1", "what am I holding", 2 * S)
    events = sorted(
        [
            *utt,
            (1 * S, "vision", seen("book", 1 * S)),
            (int(2.5 * S), "vision", seen("cup", int(2.5 * S))),
            (utt[-1][0] - 10 * MS, "vision", seen("phone", utt[-1][0] - 10 * MS)),
        ],
        key=lambda e: e[0],
    )
    backend = ScriptedBackend(reply="A cup.")
    pipe, _, _ = run_script(events, backend, ResponderConfig())
    await pipe.run()
    facts = backend.requests[0].messages[-2].content  # the camera line before the words
    assert facts.startswith("Camera now: no people; one cup")  # the frame during speech
