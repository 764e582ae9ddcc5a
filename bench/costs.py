"""Benchmark: what each model call costs on this machine, beside :class:`FixedCosts`' defaults.

A replay with ``--fixed-costs`` charges every model call a fixed cost by its work (see
:mod:`streamkit.pipelines.costs`). This measures the CPU time of that work here, on the bundled
session and assistant-style answers, so the defaults can be checked against the machine:

- Whisper: windows of 1–6 s of the bundled session's audio, greedy (partials, pauses) and
  beam 5 (finals), one thread (as the assistant's shared model runs each decode);
- the language model: the default system prompt evaluated from an empty cache (per prompt
  token, on the batch threads) and 32 tokens generated (per token, one thread);
- the Piper voice: assistant-style answers (per second of speech, one thread);
- vision: the change gate on every frame of the bundled session, and every keyframe's encode.

Last line: ``costs: asr_decode_ms=<x> lm_prompt_token_us=<x> lm_token_ms=<x>
tts_ms_per_audio_s=<x> vision_keyframe_ms=<x>`` (measured p50s).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench._common import pctl, print_table
from streamkit.core.clock import NS_PER_MS, NS_PER_US
from streamkit.pipelines.costs import FixedCosts

ANSWERS = (
    "Sure, I can help with that.",
    "The capital of France is Paris, a city famous for its art and food.",
    "I see a person sitting at a desk in front of a white wall.",
    "You could try restarting the router, then check the cable.",
    "The meeting starts at nine in the morning and ends at noon.",
)


def cpu_ns(fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """``fn(*args)`` and the process's CPU time of it (ns; the models' own threads count)."""
    before = time.process_time_ns()
    result = fn(*args)
    return result, time.process_time_ns() - before


def thread_ns(fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """``fn(*args)`` and the calling thread's CPU time of it (ns): what a virtual replay
    charges llama.cpp (its worker 0 works or waits through a whole evaluation)."""
    before = time.thread_time_ns()
    result = fn(*args)
    return result, time.thread_time_ns() - before


def session_media() -> tuple[np.ndarray, list[Any]]:
    """The bundled session's audio (16 kHz mono) and video frames."""
    from streamkit.record.mcap import default_session_path, read_session

    session = read_session(default_session_path())
    audio = np.concatenate([p.payload.samples for p in session.packets("/audio")])
    return audio.astype(np.float32), session.packets("/video")


def whisper_costs(audio: np.ndarray) -> dict[str, list[int]]:
    from streamkit.asr.whisper import DecodeOptions, WhisperConfig, WhisperModelShared

    model = WhisperModelShared(WhisperConfig(cpu_threads=1, num_workers=1))
    model.decode_window(audio[:16_000])  # the first decode builds the graph
    costs: dict[str, list[int]] = {"greedy": [], "beam 5": []}
    for seconds in (1, 2, 3, 4, 6):
        for start in range(0, len(audio) - seconds * 16_000, 3 * 16_000):
            window = audio[start : start + seconds * 16_000]
            for name, beam in (("greedy", 1), ("beam 5", 5)):
                options = DecodeOptions(beam_size=beam)
                costs[name].append(cpu_ns(model.decode_window, window, "", options)[1])
    return costs


def lm_costs(tokens_out: int = 32) -> tuple[list[int], list[int]]:
    """(prompt ns per token, per evaluation), (ns per generated token)."""
    from streamkit.lm.backend import LMRequest, Message
    from streamkit.lm.fusion import DEFAULT_SYSTEM_PROMPT
    from streamkit.lm.llamacpp import LlamaCppBackend, LlamaCppConfig

    backend = LlamaCppBackend(LlamaCppConfig(n_threads=1, n_threads_batch=2))
    llm = backend._llm
    prompt, token = [], []
    for question in ("What is the capital of France?", "What do you see?", "Tell me a joke."):
        request = LMRequest((Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", question)))
        tokens = backend.tokens(request)
        backend.reset_cache()
        prompt.append(thread_ns(backend._evaluate, tokens)[1] // len(tokens))
        steps = llm.generate(tokens, temp=0.0, reset=True)  # reuses the evaluated prompt
        next(steps)
        for _ in range(tokens_out):
            token.append(thread_ns(next, steps)[1])
    return prompt, token


def tts_costs() -> list[int]:
    """ns of CPU per second of speech, per answer."""
    from streamkit.tts.piper import PiperConfig, PiperEngine

    engine = PiperEngine(PiperConfig(deterministic=True))
    try:
        engine._synthesize("Hello.")
        out = []
        for text in ANSWERS:
            samples, cost = cpu_ns(engine._synthesize, text)
            out.append(cost * engine.sample_rate // max(1, len(samples)))
        return out
    finally:
        engine.close()


def vision_costs(frames: list[Any]) -> tuple[list[int], list[int]]:
    from streamkit.vision.stage import VisionConfig, VisionEncoder

    encoder = VisionEncoder(VisionConfig())
    gates, keys = [], []
    for packet in frames:
        image, pts = packet.payload.image, packet.pts
        gate, cost = cpu_ns(encoder.gate, image, pts)
        gates.append(cost)
        if gate.keyframe:
            keys.append(cpu_ns(encoder.analyse, image, pts, gate)[1])
    return gates, keys


def row(call: str, costs: list[int], fixed_ns: int, unit: int = NS_PER_MS) -> list[object]:
    """A table row: the measured p50/p90 of ``costs`` (ns) and the fixed default, in ``unit``."""
    name = "us" if unit == NS_PER_US else "ms"
    p50, p90 = pctl(costs, 50) / unit, pctl(costs, 90) / unit
    return [call, name, len(costs), f"{p50:.2f}", f"{p90:.2f}", f"{fixed_ns / unit:.2f}"]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    fixed = FixedCosts()
    audio, frames = session_media()
    asr = whisper_costs(audio)
    prompt, token = lm_costs()
    tts = tts_costs()
    gates, keys = vision_costs(frames)
    decodes = asr["greedy"] + asr["beam 5"]
    rows = [
        row("whisper decode, greedy", asr["greedy"], fixed.asr_decode_ns),
        row("whisper decode, beam 5", asr["beam 5"], fixed.asr_decode_ns),
        row("lm prompt, per token", prompt, fixed.lm_prompt_token_ns, NS_PER_US),
        row("lm generation, per token", token, fixed.lm_token_ns),
        row("piper, per second of speech", tts, fixed.tts_ns_per_audio_s),
        row("vision gate, per frame", gates, fixed.vision_gate_ns),
        row("vision keyframe", keys, fixed.vision_keyframe_ns),
    ]
    print_table(
        "CPU time per unit of work, measured here, against FixedCosts' defaults",
        ["call", "unit", "n", "p50", "p90", "FixedCosts"],
        rows,
    )
    print(
        f"costs: asr_decode_ms={pctl(decodes, 50) / NS_PER_MS:.1f} "
        f"lm_prompt_token_us={pctl(prompt, 50) / NS_PER_US:.0f} "
        f"lm_token_ms={pctl(token, 50) / NS_PER_MS:.1f} "
        f"tts_ms_per_audio_s={pctl(tts, 50) / NS_PER_MS:.0f} "
        f"vision_keyframe_ms={pctl(keys, 50) / NS_PER_MS:.1f}"
    )


if __name__ == "__main__":
    main()
