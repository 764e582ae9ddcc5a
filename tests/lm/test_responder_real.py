"""The Responder with the real SmolLM2-135M (llama.cpp) on a real transcript (slow).

The model runs in ``"virtual"`` compute mode on a virtual-time loop: every model call really
runs, and the clock is charged its process CPU time (one llama.cpp thread), so the latencies
are what an uncontended core takes — stable on a shared CI machine — without real sleeps.
"""

from __future__ import annotations

import pytest

from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock
from streamkit.core.events import Detection, Observation, ResponseDelta, ResponseDone
from streamkit.lm import LMRequest, ResponderConfig
from streamkit.lm.fusion import FusionBuilder
from tests.lm.test_responder import deltas, dones, run_script, utterance

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed")

from streamkit.lm.llamacpp import LlamaCppBackend, LlamaCppConfig

pytestmark = pytest.mark.slow
MS = NS_PER_MS
S = NS_PER_S


def real_transcript(data_dir: object) -> str:
    from pathlib import Path

    refs = (Path(str(data_dir)) / "refs.tsv").read_text(encoding="utf-8").splitlines()
    row = next(line for line in refs if line.startswith("speech/utterances/jfk/jfk.wav"))
    return row.split("\t", 1)[1]


async def warm_backend() -> LlamaCppBackend:
    """Load, warm up and prefill the system prompt before the script's times start (model
    time is charged on the virtual clock, so the Responder's own setup is then instant)."""
    backend = LlamaCppBackend(LlamaCppConfig(n_threads=1, mode="virtual", charge="cpu"))
    await backend.warmup()
    prefix = FusionBuilder(ResponderConfig().fusion, backend.count_tokens).prefix_messages()
    await backend.prefill(LMRequest(prefix))
    return backend


@pytest.mark.looptime
async def test_answers_a_real_transcript_with_what_was_seen(data_dir: object) -> None:
    backend = await warm_backend()
    t0 = LoopClock().now() + 3 * S
    text = real_transcript(data_dir)
    events = utterance("u1", text, t0)
    seen_at = t0 + 1500 * MS
    seen = Observation(
        seen_at, [Detection("person", 0.9, (0, 0, 50, 90))], 0.2, 0.6, ["blue"], 640, 480
    )
    events = sorted([*events, (seen_at, "vision", seen)], key=lambda e: e[0])
    pipe, responder, sink = run_script(events, backend)
    await pipe.run()
    [(_, done)] = dones(sink)
    answer = "".join(p.payload.text for _, p in deltas(sink))
    print(f"\nQ: {text}\nA: {answer}")
    assert isinstance(done.payload, ResponseDone)
    assert not done.payload.cancelled
    assert answer.strip()
    assert done.payload.text == answer
    assert done.payload.completion_tokens >= 3
    assert all(isinstance(p.payload, ResponseDelta) for _, p in deltas(sink))
    assert pipe.metrics.counters["lm.llamacpp.prefills"].value >= 1
    # prefilled while speaking: only the tail is evaluated after the final arrives
    final_to_first = pipe.metrics.histograms["lm.llamacpp.final_to_first_token"].values()[0]
    eos_to_first = pipe.metrics.histograms["lm.llamacpp.eos_to_first_token"].values()[0]
    print(f"final→first token {final_to_first / 1e6:.0f} ms, eos→first {eos_to_first / 1e6:.0f} ms")
    assert done.payload.prompt_tokens > 60
    assert final_to_first < 1 * S
    assert responder.history[-1].assistant == answer.strip()


@pytest.mark.looptime
async def test_barge_in_stops_the_real_model_within_one_chunk() -> None:
    backend = await warm_backend()
    t0 = LoopClock().now() + 3 * S
    first = utterance("u1", "tell me a long story about a dragon and a knight", t0)
    final_at = first[-1][0]
    # the answer streams from ~70 to ~550 ms after the final (48 tokens, quiet machine): a
    # barge-in at 500 ms raced its last tokens, and lost on a loaded CI machine
    barge_at = final_at + 250 * MS
    events = [*first, *utterance("u2", "stop please", barge_at)]
    pipe, _, sink = run_script(events, backend)
    await pipe.run()
    r0 = deltas(sink, "resp-0")
    done0 = next(p for _, p in dones(sink) if p.payload.response_id == "resp-0")
    t_done0 = next(t for t, p in dones(sink) if p is done0)
    assert r0, "the first answer had started"
    assert done0.payload.cancelled
    assert t_done0 - barge_at <= 30 * MS
    assert all(t <= barge_at for t, _ in r0)
    assert all(p.epoch < done0.epoch for _, p in r0)
    assert any(not p.payload.cancelled for _, p in dones(sink) if p.payload.response_id == "resp-1")
