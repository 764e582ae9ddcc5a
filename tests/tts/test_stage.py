"""The TTS stage on the virtual clock (looptime) with a voice that charges virtual time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from streamkit import LoopClock, Packet, Pipeline, Policy, StageContext
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.events import (
    ResponseAudio,
    ResponseAudioDone,
    ResponseDelta,
    ResponseDone,
    ResponseHeld,
    SpeechStarted,
)
from streamkit.core.media import AudioChunk, ns_to_samples
from streamkit.tts import ScriptedVoice, TtsConfig, TtsStage

MS = NS_PER_MS
S = NS_PER_S
ANSWER = "Sure, I can help with that. The capital of France is Paris. It is a big city."


@dataclass
class Script:
    """Emits (time, port, payload) at absolute times; a callable payload is called instead."""

    events: list[tuple[Nanos, str, Any]]
    name: str = "script"

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        seq = 0
        for at, port, payload in self.events:
            await ctx.clock.sleep_until(at)
            if callable(payload):
                payload()
                continue
            uid = getattr(payload, "utterance_id", None)
            seq += 1
            await ctx.output(port).put(Packet(port, seq, 500 * MS, 0, payload, 0, uid))


@dataclass
class Collect:
    name: str = "sink"
    got: list[tuple[Nanos, Packet[Any]]] = field(default_factory=list)

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input():
            assert isinstance(item, Packet)
            self.got.append((ctx.clock.now(), item))

    def of(self, kind: type) -> list[tuple[Nanos, Any]]:
        return [(t, p.payload) for t, p in self.got if isinstance(p.payload, kind)]


def answer(rid: str, text: str, start: Nanos, token_ns: Nanos = 20 * MS,
           cancelled_at: int | None = None) -> list[tuple[Nanos, str, Any]]:
    words = text.split(" ")
    pieces = [words[0]] + [" " + w for w in words[1:]]
    if cancelled_at is not None:
        pieces = pieces[:cancelled_at]
    out: list[tuple[Nanos, str, Any]] = [
        (start + i * token_ns, "response", ResponseDelta(rid, "u-" + rid, p, i))
        for i, p in enumerate(pieces)
    ]
    done = ResponseDone(rid, "u-" + rid, "".join(pieces), cancelled=cancelled_at is not None)
    out.append((start + len(pieces) * token_ns, "response", done))
    return out


def run(events: list[tuple[Nanos, str, Any]], voice: ScriptedVoice | None = None,
        config: TtsConfig | None = None,
        heard: list[tuple[ResponseAudioDone, str]] | None = None,
        ) -> tuple[Pipeline, TtsStage, Collect]:
    pipe = Pipeline(LoopClock())
    response = pipe.edge("response", 64, Policy.BLOCK)
    speech = pipe.edge("speech", 16, Policy.BLOCK)
    out = pipe.edge("out", 64, Policy.BLOCK)
    on_heard: Callable[[ResponseAudioDone, str], None] | None = (
        None if heard is None else (lambda done, text: heard.append((done, text)))
    )
    stage = TtsStage(voice or ScriptedVoice(), config, on_heard)
    sink = Collect()
    pipe.add(Script(events), outputs={"response": response, "speech": speech})
    pipe.add(stage, {"response": response, "speech": speech}, {"out": out})
    pipe.add(sink, {"in": out})
    return pipe, stage, sink


@pytest.mark.looptime
async def test_speaks_the_answer_paced_on_the_playout_clock() -> None:
    voice = ScriptedVoice(rtf=0.2)
    heard: list[tuple[ResponseAudioDone, str]] = []
    pipe, _, sink = run(answer("r1", ANSWER, 1 * S), voice, TtsConfig(lead_ms=200), heard)
    await pipe.run()
    chunks = sink.of(ResponseAudio)
    assert voice.texts == ["Sure, I can help with that.", "The capital of France is Paris.",
                           "It is a big city."]
    # every frame is 40 ms (the last of each piece may be shorter), contiguous on the clock
    for (_, a), (_, b) in itertools.pairwise(chunks):
        assert b.pts == a.pts + a.duration
        assert a.duration <= 40 * MS
    assert [c.index for _, c in chunks] == list(range(len(chunks)))
    # sent at most `lead` ahead of playout, never after its playout time
    for sent, chunk in chunks:
        assert chunk.pts - 200 * MS <= sent <= chunk.pts
    # the words ride on the frames: joined, they are the answer
    assert "".join(c.text for _, c in chunks) == ANSWER
    [(_, done)] = sink.of(ResponseAudioDone)
    assert not done.cancelled
    assert done.text == ANSWER
    assert done.played_ns == sum(c.duration for _, c in chunks)
    assert done.end == chunks[-1][1].pts + chunks[-1][1].duration
    assert heard == [(done, ANSWER)]
    first = pipe.metrics.lineage.get("u-r1")["tts.first_audio"]
    assert first == chunks[0][0]
    assert pipe.metrics.counters["tts.scripted.underruns"].value == 0


@pytest.mark.looptime
async def test_text_is_forwarded_at_once_not_after_the_voice() -> None:
    pipe, _, sink = run(answer("r1", ANSWER, 1 * S, token_ns=20 * MS), ScriptedVoice(rtf=0.5))
    await pipe.run()
    deltas = sink.of(ResponseDelta)
    assert [t for t, _ in deltas] == [1 * S + i * 20 * MS for i in range(len(deltas))]
    done_at = sink.of(ResponseDone)[0][0]
    assert done_at == 1 * S + len(deltas) * 20 * MS
    assert done_at < sink.of(ResponseAudio)[-1][0]


@pytest.mark.looptime
async def test_barge_in_stops_within_one_chunk_and_records_what_was_heard() -> None:
    heard: list[tuple[ResponseAudioDone, str]] = []
    barge = 3 * S
    events = [*answer("r1", ANSWER, 1 * S), (barge, "speech", SpeechStarted("u2", barge))]
    pipe, stage, sink = run(sorted(events, key=lambda e: e[0]), ScriptedVoice(), None, heard)
    await pipe.run()
    chunks = sink.of(ResponseAudio)
    assert chunks, "it spoke before the barge-in"
    assert max(t for t, _ in chunks) <= barge  # nothing sent once the barge-in was seen
    [(stopped_at, done)] = sink.of(ResponseAudioDone)
    assert done.cancelled
    assert done.reason == "barge-in"
    assert stopped_at == barge
    started = [c for _, c in chunks if c.pts <= barge]
    assert done.text == "".join(c.text for c in started)
    assert ANSWER.startswith(done.text)
    assert 0 < len(done.text) < len(ANSWER)
    assert done.played_ns == sum(min(c.duration, barge - c.pts) for c in started)
    assert done.end == barge
    assert heard == [(done, ANSWER)]
    assert not stage.speaking


@pytest.mark.looptime
async def test_cancel_and_a_newer_answer_stop_the_voice() -> None:
    stage_box: list[TtsStage] = []
    events = answer("r1", ANSWER, 1 * S)
    events.append((2500 * MS, "call", lambda: stage_box[0].cancel("client")))
    events += answer("r2", "Another answer here. And more words to say.", 4 * S)
    events.append((5 * S, "call", lambda: None))
    events += answer("r3", "Third one is long enough to be cut off early.", 5100 * MS)
    pipe, stage, sink = run(sorted(events, key=lambda e: e[0]))
    stage_box.append(stage)
    await pipe.run()
    dones = {d.response_id: (t, d) for t, d in sink.of(ResponseAudioDone)}
    assert dones["r1"][1].cancelled
    assert dones["r1"][1].reason == "client"
    assert dones["r2"][1].cancelled
    assert dones["r2"][1].reason == "new answer"
    assert not dones["r3"][1].cancelled
    for rid, (stopped, _) in dones.items():
        assert all(t <= stopped for t, c in sink.of(ResponseAudio) if c.response_id == rid)
    assert stage.cancel() is False  # nothing left to cancel


@pytest.mark.looptime
async def test_a_cancelled_answer_is_not_spoken_further_and_speech_off_is_text_only() -> None:
    events = answer("r1", ANSWER, 1 * S, cancelled_at=9)
    pipe, _, sink = run(events)
    await pipe.run()
    [(t, done)] = sink.of(ResponseAudioDone)
    assert done.cancelled
    assert done.reason == "answer cancelled"
    assert all(at <= t for at, _ in sink.of(ResponseAudio))

    pipe, _stage, sink = run(answer("r1", ANSWER, 1 * S), config=TtsConfig(enabled=False))
    await pipe.run()
    assert not sink.of(ResponseAudio)
    assert not sink.of(ResponseAudioDone)
    assert "".join(d.text for _, d in sink.of(ResponseDelta)) == ANSWER


@pytest.mark.looptime
async def test_a_slow_voice_leaves_gaps_and_counts_underruns() -> None:
    voice = ScriptedVoice(rtf=1.5, chunk_ms=200)
    pipe, _, sink = run(answer("r1", ANSWER, 1 * S), voice)
    await pipe.run()
    chunks = [c for _, c in sink.of(ResponseAudio)]
    gaps = [b.pts - (a.pts + a.duration) for a, b in itertools.pairwise(chunks)]
    assert min(gaps) >= 0
    assert max(gaps) > 0
    assert pipe.metrics.counters["tts.scripted.underruns"].value == sum(g > 0 for g in gaps)
    [(_, done)] = sink.of(ResponseAudioDone)
    assert done.text == ANSWER


@dataclass
class BrokenVoice(ScriptedVoice):
    """Speaks the first piece, then fails like a speech server that went away."""

    async def _speak(self, text: str) -> Any:  # type: ignore[override]
        if len(self.texts) > 1:
            await self.clock.sleep(10 * MS)
            raise ConnectionError("speech server gone")
        async for chunk in super()._speak(text):
            yield chunk


@pytest.mark.looptime
async def test_a_failing_voice_costs_the_voice_not_the_session() -> None:
    pipe, _, sink = run(answer("r1", ANSWER, 1 * S), BrokenVoice())
    await pipe.run()
    assert "".join(d.text for _, d in sink.of(ResponseDelta)) == ANSWER  # the text is whole
    [(_, done)] = sink.of(ResponseAudioDone)
    assert not done.cancelled
    assert done.text.startswith("Sure, I can help with that.")
    assert pipe.metrics.counters["tts.scripted.errors"].value == 1


@pytest.mark.looptime
async def test_an_answer_without_its_done_is_spoken_and_the_stage_still_ends() -> None:
    events = answer("r1", "Sure, I can help with that.", 1 * S)[:-1]  # no ResponseDone
    pipe, _, sink = run(events)
    await pipe.run()  # returns: the stage does not wait for a done that never comes
    [(_, done)] = sink.of(ResponseAudioDone)
    assert done.text == "Sure, I can help with that."


@dataclass
class ThreadLikeVoice(ScriptedVoice):
    """Like a local model run in a thread (ModelSlot): a piece comes whole after ``rtf`` ×
    its audio, and a cancel waits until that synthesis has ended."""

    async def _speak(self, text: str) -> Any:  # type: ignore[override]
        n = ns_to_samples(self.duration_of(text), self.sample_rate)
        work = asyncio.ensure_future(self.clock.sleep(round(self.rtf * self.duration_of(text))))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            await work  # the thread runs on
            raise
        yield AudioChunk(np.full(n, 0.3, np.float32), self.sample_rate)


@pytest.mark.looptime
async def test_barge_in_says_stopped_at_once_even_while_a_piece_is_being_synthesised() -> None:
    # "Sure, I can help with that." is ready at ~2.5 s and plays; the next sentence is being
    # synthesised from then until ~4.1 s
    voice = ThreadLikeVoice(rtf=0.8, first_chunk_ns=0)
    barge = 3 * S
    events = [*answer("r1", ANSWER, 1 * S), (barge, "speech", SpeechStarted("u2", barge))]
    pipe, stage, sink = run(sorted(events, key=lambda e: e[0]), voice)
    await pipe.run()
    [(stopped_at, done)] = sink.of(ResponseAudioDone)
    assert done.cancelled
    assert stopped_at == barge  # not when the synthesis of the second piece ends
    assert max(t for t, _ in sink.of(ResponseAudio)) <= barge
    assert not stage.speaking


@pytest.mark.looptime
async def test_a_barge_in_while_the_client_plays_the_last_frames_still_cuts_them() -> None:
    text = "Sure, I can help with that."
    pipe, _, sink = run(answer("r1", text, 1 * S))
    await pipe.run()
    last = sink.of(ResponseAudio)[-1]
    end = last[1].pts + last[1].duration
    [(done_at, _)] = sink.of(ResponseAudioDone)
    assert done_at == end  # the voice is "speaking" until its last frame has played
    barge = end - 100 * MS  # every frame was sent (≤ 200 ms ahead); the client plays the last
    assert last[0] < barge
    base = (LoopClock().now() // S + 1) * S  # the same answer again, later on the same loop
    events = [(base + t, port, e) for t, port, e in answer("r1", text, 1 * S)]
    events.append((base + barge, "speech", SpeechStarted("u2", base + barge)))
    pipe, _, sink = run(sorted(events, key=lambda e: e[0]))
    await pipe.run()
    assert sink.of(ResponseAudio)[-1][0] == base + last[0]  # every frame was sent again
    [(stopped_at, done)] = sink.of(ResponseAudioDone)
    assert done.cancelled
    assert done.reason == "barge-in"
    assert stopped_at == base + barge
    assert done.played_ns < sum(c.duration for _, c in sink.of(ResponseAudio))


# -- a held speculation's first piece is synthesised before its release ---------------------


@pytest.mark.looptime
async def test_a_held_speculations_first_piece_is_ready_when_the_answer_is_released() -> None:
    release = 2 * S
    growing = ["Sure,", " I can help with", " that.", " The capital"]  # token by token
    held = [ResponseHeld("r1", "u-r1", "".join(growing[: i + 1])) for i in range(len(growing))]
    events: list[tuple[Nanos, str, Any]] = [
        (1 * S + i * 10 * MS, "response", h) for i, h in enumerate(held)
    ]
    events += answer("r1", ANSWER, release, token_ns=1 * MS)
    voice = ScriptedVoice()
    pipe, _, sink = run(events, voice)
    await pipe.run()
    assert not [p for _, p in sink.got if isinstance(p.payload, ResponseHeld)]  # consumed
    # the first piece was synthesised once, as soon as the held text had it, before the release
    assert voice.texts == ["Sure, I can help with that.", "The capital of France is Paris.",
                           "It is a big city."]
    cut = release + 6 * MS  # the delta " The" ends the first piece
    assert sink.of(ResponseAudio)[0][0] == cut  # its audio was ready: sent at once
    assert "".join(c.text for _, c in sink.of(ResponseAudio)) == ANSWER
    counters = pipe.metrics.counters
    assert counters["tts.scripted.prepared"].value == 1
    assert counters["tts.scripted.prepared_used"].value == 1
    # the same answer unprepared waits for a synthesis (30 ms + 0.2 × its audio here)
    cold_pipe, _, cold = run(answer("r1", ANSWER, release, token_ns=1 * MS), ScriptedVoice())
    await cold_pipe.run()
    first_delta = cold.of(ResponseDelta)[0][0]
    assert cold.of(ResponseAudio)[0][0] - first_delta > 30 * MS + 5 * MS


@pytest.mark.looptime
async def test_a_prepared_piece_of_other_words_is_dropped_not_spoken() -> None:
    held = ResponseHeld("r1", "u-r1", "Maybe, I think so.", complete=False)
    voice = ScriptedVoice()
    events = [(1 * S, "response", held), *answer("r1", ANSWER, 2 * S)]
    pipe, _, sink = run(events, voice)
    await pipe.run()
    assert voice.texts[0] == "Maybe, I think so."  # prepared; the answer said other words
    assert "".join(c.text for _, c in sink.of(ResponseAudio)) == ANSWER
    assert "tts.scripted.prepared_used" not in pipe.metrics.counters


@pytest.mark.looptime
async def test_the_voices_lead_in_silence_is_not_sent() -> None:
    @dataclass
    class LateVoice(ScriptedVoice):
        """A voice whose audio opens with 120 ms of silence (as Piper's does, shorter)."""

        async def _speak(self, text: str) -> Any:
            first = True
            async for chunk in super()._speak(text):
                if first:
                    first = False
                    silence = np.zeros(self.sample_rate * 120 // 1000, np.float32)
                    chunk = AudioChunk(np.concatenate([silence, chunk.samples]), chunk.sample_rate)
                yield chunk

    pipe, _, sink = run(answer("r1", ANSWER, 1 * S), LateVoice())
    await pipe.run()
    chunks = [c for _, c in sink.of(ResponseAudio)]
    first = np.frombuffer(chunks[0].pcm, "<i2")
    lead = int(np.flatnonzero(np.abs(first) > 300)[0])  # 0.01 full scale
    assert lead <= 16_000 * 20 // 1000 + 1  # at most the 20 ms kept before the sound
    # later pieces keep their own silence (the pause between sentences)
    starts = [i for i, c in enumerate(chunks) if c.index > 0 and c.text.strip()[:1].isupper()]
    assert starts
    later = np.frombuffer(chunks[starts[-1]].pcm, "<i2")
    assert np.abs(later[: 16_000 * 100 // 1000]).max() <= 300
