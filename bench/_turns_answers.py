"""Part 2 of bench/turns.py: the whole assistant per policy, end of speech → first token.

One session per policy on a virtual clock (compute charged as measured CPU time): real
Whisper tiny.en, Smart Turn v3.2 (``smart``), SmolLM2-135M on llama.cpp with speculation.
The turns of bench/turns.py are played one after the other (each with its own silences).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from bench._common import pctl, print_table
from streamkit.asr.run import ArraySource, CollectSink
from streamkit.core.clock import NS_PER_MS, NS_PER_S
from streamkit.core.events import ResponseDelta, SpeechStopped, TranscriptFinal
from streamkit.lm.responder import ResponderConfig
from streamkit.testing import run_virtual
from streamkit.turn.core import TurnConfig

if TYPE_CHECKING:
    from bench.turns import Clip

__all__ = ["answers_part"]

RATE = 16_000
MS = NS_PER_MS


@dataclass
class Run:
    label: str
    first_token_ms: list[float]
    eot_ms: list[float]
    final_ms: list[float]
    unanswered: int
    speculations: int
    used: int
    wasted_tokens: int
    wasted_cpu_ms: float


async def _session(label: str, turn: TurnConfig, clips: list[Clip], models: Any) -> Run:
    from streamkit.pipelines.assistant import AssistantConfig, build

    base = AssistantConfig(compute="virtual")
    asr = replace(base.asr, charge_cpu=True, turn=turn)
    responder = ResponderConfig(max_tokens=16)
    config = replace(base, asr=asr, responder=responder, vision=False, echo_gate=None)
    stream = np.concatenate([c.audio for c in clips])
    offsets = np.cumsum([0] + [len(c.audio) for c in clips])[:-1]
    sink = CollectSink()
    pipe, _ = build(config, models, ArraySource(stream), sink)
    await pipe.run()
    origin = pipe.state.base_time or 0
    deltas = [t - origin for t, p in sink.received if isinstance(p.payload, ResponseDelta)]
    stops = [t - origin for t, p in sink.received if isinstance(p.payload, SpeechStopped)]
    lasts = [
        t - origin
        for t, p in sink.received
        if isinstance(p.payload, TranscriptFinal) and p.payload.is_last
    ]
    first: list[float] = []
    eot: list[float] = []
    final: list[float] = []
    unanswered = 0
    for clip, offset, nxt in zip(clips, offsets, [*offsets[1:], len(stream)], strict=True):
        end = int(offset) * NS_PER_S // RATE + clip.end
        until = int(nxt) * NS_PER_S // RATE + clip.start
        after = [t for t in deltas if end <= t < until]
        if after:
            first.append((after[0] - end) / MS)
        else:
            unanswered += 1
        declared = [t for t in stops if end - 150 * MS <= t < until]
        if declared:
            eot.append((declared[0] - end) / MS)
        finals = [t for t in lasts if end - 150 * MS <= t < until]
        if finals:
            final.append((finals[0] - end) / MS)
    counters = pipe.metrics.counters
    name = models.lm.name

    def count(key: str) -> int:
        c = counters.get(f"lm.{name}.{key}")
        return int(c.value) if c is not None else 0

    return Run(
        label,
        first,
        eot,
        final,
        unanswered,
        count("speculations"),
        count("speculations_used"),
        count("wasted_tokens"),
        count("wasted_compute_ns") / MS,
    )


def answers_part(clips: list[Clip], smart: TurnConfig) -> float:
    """Print the table; return the ``smart`` setting's end of speech → first token p50 (ms).
    When ``smart`` is not ``TurnConfig``'s default, the shipped default runs as a third row
    (what the assistant does unless told otherwise)."""
    from streamkit.pipelines.assistant import AssistantConfig, Models

    config = AssistantConfig(compute="virtual")
    models = Models.load(config)

    async def both() -> list[Run]:
        await models.warmup(config)  # as `streamkit serve` does before its first client
        runs = [await _session("vad (today)", TurnConfig(detection="vad"), clips, models)]
        runs.append(await _session("smart", smart, clips, models))
        shipped = TurnConfig(detection="smart")
        if smart != shipped:
            runs.append(await _session("smart (shipped default)", shipped, clips, models))
        return runs

    runs = run_virtual(both())
    rows = []
    for run in runs:
        rows.append(
            [
                run.label,
                round(pctl(run.eot_ms, 50)),
                round(pctl(run.final_ms, 50)),
                round(pctl(run.first_token_ms, 50)),
                round(pctl(run.first_token_ms, 90)),
                run.unanswered,
                f"{run.used}/{run.speculations}",
                f"{run.wasted_tokens / len(clips):.1f}",
                f"{run.wasted_cpu_ms / len(clips):.1f}",
            ]
        )
    print_table(
        f"the assistant per policy ({len(clips)} turns, virtual clock, CPU time charged; "
        "first token = first answer delta after the reference end of speech)",
        [
            "policy",
            "eot p50 ms",
            "eos->final p50 ms",
            "eos->token p50 ms",
            "p90 ms",
            "unanswered",
            "speculations used",
            "wasted tok/turn",
            "wasted CPU ms/turn",
        ],
        rows,
    )
    return pctl(runs[1].first_token_ms, 50)
