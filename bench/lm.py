"""Language model benchmark: time to first token, tokens/s, end of speech → first token.

Usage: ``python bench/lm.py [--threads N ...] [--runs N] [--utterances N] [--charge cpu|wall]
[--no-speech]``

Part 1 — the default local model (SmolLM2-135M-Instruct Q4_1 on llama.cpp), live (a worker
thread, real time), on a ~400-token fused prompt (system prompt, history turns, camera
observations, the utterance's words with their times), for each ``--threads`` value:

- ``cold``: empty KV cache, the whole prompt is evaluated before the first token;
- ``prefix``: system prompt + history cached (as after the previous turn), the new
  observations and utterance are evaluated;
- ``prefilled``: the prompt was prefilled while the user spoke (what the Responder does), only
  the tail remains.

``ttft`` is request → first text delta; ``tok/s`` is generation speed after the first token.

Part 2 — end of speech → first token over replayed real speech (tests/data utterances from
``refs.tsv``, one session, 3 s of silence between utterances) through the real assistant
pipeline (faster-whisper tiny.en ASR with VAD → Responder → llama.cpp). It runs on a
virtual-time loop: every model call really runs and the clock is charged its cost (``--charge
cpu``: process CPU time, i.e. an uncontended machine; ``wall``: wall time on this, possibly
shared, machine). End of speech = the VAD's ``SpeechStopped.t`` (end of the last voiced audio).

Last line: ``lm: ttft_p50_ms=<cold, first --threads> tok_per_s=<x>
eos_to_first_token_p50_ms=<n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import pctl, print_table
from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock
from streamkit.core.events import (
    Detection,
    Observation,
    ResponseDelta,
    ResponseDone,
    SpeechStopped,
    TranscriptFinal,
    Word,
)
from streamkit.lm.backend import LMRequest
from streamkit.lm.fusion import FusionBuilder, FusionConfig, Turn
from streamkit.lm.llamacpp import LlamaCppBackend, LlamaCppConfig

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
S = NS_PER_S


def refs() -> list[tuple[str, str]]:
    rows = []
    for line in (DATA / "refs.tsv").read_text(encoding="utf-8").splitlines():
        path, _, text = line.partition("\t")
        if path.startswith("speech/utterances/") and text.strip():
            rows.append((path, text.strip()))
    return rows


def words_of(text: str, start: int) -> list[Word]:
    step = 300 * NS_PER_MS
    return [
        Word(w, start + i * step, start + (i + 1) * step - 40 * NS_PER_MS, 0.9)
        for i, w in enumerate(text.split())
    ]


def fused_request(backend: LlamaCppBackend, utterance: str, budget: int = 420) -> LMRequest:
    """A ~400-token fused prompt: history from the refs, two observations, the utterance."""
    texts = [t for _, t in refs()]
    history = [
        Turn(t, (10 + 8 * i) * S, (12 + 8 * i) * S, f"I heard you say: {t[:60]}")
        for i, t in enumerate(texts)
    ]
    now = 200 * S
    seen = [
        Observation(now + S // 2, [Detection("face", 0.9, (10, 10, 80, 80))], 0.1, 0.6,
                    ["white", "blue"], 640, 480),
        Observation(now + S, [Detection("qr", 1.0, (0, 0, 50, 50), text="streamkit")], 0.3,
                    0.5, ["black"], 640, 480),
    ]  # fmt: skip
    config = FusionConfig(budget_tokens=budget, history="chat")  # chat turns: a ~400-token prompt
    builder = FusionBuilder(config, backend.count_tokens)
    fused = builder.build(history, words_of(utterance, now), seen)
    return LMRequest(fused.messages, max_tokens=64)


async def timed(backend: LlamaCppBackend, request: LMRequest) -> tuple[float, float, int, int]:
    """(ttft ms, tokens/s, prompt tokens, cached tokens) of one completion."""
    clock = LoopClock()
    start = clock.now()
    first = last = None
    completion = backend.complete(request)
    async for _ in completion:
        last = clock.now()
        first = first or last
    usage = completion.usage
    ttft = ((first or clock.now()) - start) / NS_PER_MS
    rate = 0.0
    if first is not None and last is not None and last > first:
        rate = (usage.completion_tokens - 1) * S / (last - first)
    return ttft, rate, usage.prompt_tokens, usage.prompt_cached


async def part1(threads: int, runs: int) -> dict[str, list[tuple[float, float, int, int]]]:
    backend = LlamaCppBackend(LlamaCppConfig(n_threads=threads))
    await backend.warmup()
    questions = [
        "what does the code in front of me say",
        "who is standing behind me right now",
        "tell me what you can see",
        "what am I looking at",
    ]
    results: dict[str, list[tuple[float, float, int, int]]] = {
        "cold": [], "prefix": [], "prefilled": [],
    }  # fmt: skip
    for i in range(runs):
        q = questions[i % len(questions)]
        request = fused_request(backend, q)
        backend.reset_cache()
        results["cold"].append(await timed(backend, request))
        # prefix: cache holds system + history (the previous turn's prompt), then a new question
        await backend.prefill(fused_request(backend, "something else entirely"))
        results["prefix"].append(await timed(backend, request))
        # prefilled: the Responder prefilled the words while the user spoke
        await backend.prefill(request)
        results["prefilled"].append(await timed(backend, request))
    return results


def speech_session(n: int, gap_s: float = 3.0) -> tuple[np.ndarray[Any, Any], list[str]]:
    from streamkit.sources.media_io import load_audio

    silence = np.zeros(int(16_000 * gap_s), dtype=np.float32)
    parts: list[np.ndarray[Any, Any]] = [silence[:16_000]]
    texts = []
    for rel, text in refs()[:n]:
        parts += [load_audio(DATA / rel), silence]
        texts.append(text)
    return np.concatenate(parts), texts


async def part2(threads: int, n: int, charge: str) -> tuple[list[list[Any]], list[float]]:
    from streamkit.asr.core import AsrConfig
    from streamkit.asr.run import ArraySource, CollectSink
    from streamkit.asr.whisper import WhisperModelShared
    from streamkit.lm.load import LMSpec
    from streamkit.lm.responder import ResponderConfig
    from streamkit.pipelines.assistant import AssistantConfig, Models, build

    audio, _ = speech_session(n)
    config = AssistantConfig(
        asr=AsrConfig(compute="virtual", charge_cpu=charge == "cpu"),
        compute="virtual",
        lm=LMSpec(threads=threads),
        responder=ResponderConfig(max_tokens=48),
    )
    mode: Literal["cpu", "wall"] = "cpu" if charge == "cpu" else "wall"
    lm = LlamaCppBackend(LlamaCppConfig(n_threads=threads, mode="virtual", charge=mode))
    models = Models(whisper=WhisperModelShared(config.asr.whisper), lm=lm)
    sink = CollectSink()
    pipe, _ = build(config, models, ArraySource(audio), sink)
    await pipe.run()
    stopped: dict[str, int] = {}
    final_at: dict[str, int] = {}
    first_at: dict[str, int] = {}
    texts: dict[str, str] = {}
    answers: dict[str, str] = {}
    for now, packet in sink.received:
        ev = packet.payload
        if isinstance(ev, SpeechStopped):
            stopped.setdefault(ev.utterance_id, ev.t)
        elif isinstance(ev, TranscriptFinal):
            texts[ev.utterance_id] = (texts.get(ev.utterance_id, "") + " " + ev.text).strip()
            if ev.is_last:
                final_at[ev.utterance_id] = now
        elif isinstance(ev, ResponseDelta):
            first_at.setdefault(ev.utterance_id, now)
        elif isinstance(ev, ResponseDone):
            text = " ".join(ev.text.split())
            answers[ev.utterance_id] = text + (" [cancelled]" if ev.cancelled else "")
    rows: list[list[Any]] = []
    eos: list[float] = []
    for uid, first in first_at.items():
        stop = stopped.get(uid)
        fin = final_at.get(uid)
        e2f = (first - stop) / NS_PER_MS if stop is not None else float("nan")
        if stop is not None:
            eos.append(e2f)
        rows.append([
            uid,
            texts.get(uid, "")[:48],
            round((fin - stop) / NS_PER_MS) if fin is not None and stop is not None else "-",
            round((first - fin) / NS_PER_MS) if fin is not None else "-",
            round(e2f),
            answers.get(uid, "")[:70],
        ])  # fmt: skip
    return rows, eos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--speech-threads", type=int, default=1, help="LM threads in part 2")
    parser.add_argument("--charge", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--no-speech", action="store_true", help="skip part 2")
    args = parser.parse_args(argv)

    rows = []
    headline: tuple[float, float] | None = None
    for threads in args.threads:
        results = asyncio.run(part1(threads, args.runs))
        for scenario, samples in results.items():
            ttfts = [s[0] for s in samples]
            rates = [s[1] for s in samples if s[1] > 0]
            rows.append([
                threads, scenario, samples[0][2], round(pctl([s[3] for s in samples], 50)),
                round(pctl(ttfts, 50)), round(max(ttfts)), round(pctl(rates, 50), 1),
            ])  # fmt: skip
        if headline is None:
            cold = results["cold"]
            all_rates = [s[1] for v in results.values() for s in v if s[1] > 0]
            headline = (pctl([s[0] for s in cold], 50), pctl(all_rates, 50))
    print_table(
        f"SmolLM2-135M Q4_1 (llama.cpp), ~400-token fused prompt, {args.runs} runs, live",
        ["threads", "scenario", "prompt_tok", "cached_tok", "ttft_p50_ms", "ttft_max_ms", "tok/s"],
        rows,
    )
    assert headline is not None
    eos_p50 = float("nan")
    if not args.no_speech:
        from streamkit.testing.virtual import run_virtual

        speech_rows, eos = run_virtual(part2(args.speech_threads, args.utterances, args.charge))
        print_table(
            f"end of speech → first token, {args.utterances} real utterances, ASR + LM "
            f"(LM threads={args.speech_threads}, charge={args.charge}, virtual time)",
            ["utt", "transcript", "eos→final_ms", "final→token_ms", "eos→token_ms", "answer"],
            speech_rows,
        )
        eos_p50 = pctl(eos, 50)
    ttft, rate = headline
    print(
        f"lm: ttft_p50_ms={ttft:.0f} tok_per_s={rate:.1f} eos_to_first_token_p50_ms={eos_p50:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
