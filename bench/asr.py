"""Streaming ASR benchmark: WER vs offline tiny.en, commit latency, CPU per audio second.

Usage: ``python bench/asr.py [--data DIR] [--match SUBSTR] [--charge cpu|wall]``

DIR holds media files and ``refs.tsv`` (``relative/path<TAB>reference``; an empty reference
marks a non-speech clip). Each file streams through the ASR stage at real-time pace on a
virtual-time loop; every decode really runs and the virtual clock is charged its measured
cost (``--charge cpu``: the decode's process CPU time, i.e. what an uncontended machine
takes; ``--charge wall``: its wall time on this, possibly shared, machine). Reported per
file and overall:

- ``wer_stream``: normalised WER of the concatenated finals; ``wer_offline``: faster-whisper
  ``transcribe`` with default settings (beam 5, 30 s windows, no VAD) on the same file;
- ``first_s``: median time from VAD speech start to the first partial/final with text;
- ``commit p50/p90``: word commit latency = time the final carrying a word was emitted minus
  the word's end time in the audio;
- ``cpu/s``: process CPU seconds per audio second of the streaming run (VAD + decodes + all
  framework overhead; offline decoding is not counted); ``rtf``: charged compute / audio;
- ``nonspeech``: words emitted on clips whose reference is empty.

Last line: ``asr: wer_stream=… wer_offline=… commit_p50_s=… commit_p90_s=… nonspeech_words=…
cpu_s_per_audio_s=…``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import pctl, print_table
from streamkit.asr.core import AsrConfig
from streamkit.asr.hypothesis import CommitPolicy
from streamkit.asr.run import stream_array
from streamkit.asr.textnorm import word_errors
from streamkit.asr.vad import VadConfig
from streamkit.asr.whisper import (
    DecodeOptions,
    WhisperConfig,
    WhisperModelShared,
)
from streamkit.core.clock import NS_PER_S
from streamkit.core.events import SpeechStarted, TranscriptFinal, TranscriptPartial
from streamkit.sources.media_io import load_audio
from streamkit.testing.virtual import run_virtual

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def read_refs(data: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for line in (data / "refs.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        path, _, ref = line.partition("\t")
        if "#" in path:  # one channel of a stereo file: not supported here
            continue
        rows.append((path, ref.strip()))
    return rows


@dataclass
class FileResult:
    """One file streamed once: error counts, latencies (s), CPU; times relative to audio."""

    rel: str
    seconds: float
    n_ref: int
    e_stream: int
    e_offline: int
    latencies: list[float]
    firsts: list[float]
    cpu_s: float
    busy_s: float
    n_words: int
    hyp: str


def add_settings(parser: argparse.ArgumentParser) -> None:
    """The streaming settings a run may change (defaults: the shipped config)."""
    parser.add_argument("--charge", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 CPU threads")
    parser.add_argument("--tick", type=float, default=AsrConfig.tick_s)
    policy = CommitPolicy()
    parser.add_argument("--margin", type=float, default=policy.margin_s)
    parser.add_argument("--min-prob", type=float, default=policy.min_probability)
    parser.add_argument("--uncertain-agreement", type=int, default=policy.uncertain_agreement)
    parser.add_argument("--confident-prob", type=float, default=policy.confident_probability)
    parser.add_argument("--pause-agreement", type=int, default=policy.pause_agreement)
    parser.add_argument("--confident-margin", type=float, default=policy.confident_margin_s)
    parser.add_argument("--left-context", type=float, default=AsrConfig.left_context_s)
    parser.add_argument("--max-window", type=float, default=AsrConfig.max_window_s)
    parser.add_argument("--final-cover", type=float, default=AsrConfig.final_cover_s)
    parser.add_argument("--utterance-context", type=float, default=AsrConfig.utterance_context_s)
    parser.add_argument("--beam", type=int, default=DecodeOptions.beam_size)
    parser.add_argument("--final-beam", type=int, default=AsrConfig.final_beam_size)
    parser.add_argument("--pause-beam", type=int, default=AsrConfig.pause_beam_size)
    parser.add_argument("--min-encode", type=float, default=DecodeOptions.min_encode_s)
    parser.add_argument(
        "--encode-step",
        type=float,
        default=DecodeOptions.encode_step_s,
        help="encoder length rounded up to a multiple of this (s); 0.02 = no rounding",
    )
    parser.add_argument("--context-chars", type=int, default=AsrConfig.context_chars)
    parser.add_argument("--pause", type=float, default=VadConfig.pause_s)
    parser.add_argument("--hangover", type=float, default=VadConfig.hangover_s)
    parser.add_argument(
        "--lead-silence", type=float, default=0.0, help="seconds of silence put before each file"
    )


def config_from(args: argparse.Namespace) -> AsrConfig:
    return AsrConfig(
        compute="virtual",
        charge_cpu=args.charge == "cpu",
        tick_s=args.tick,
        commit=CommitPolicy(
            margin_s=args.margin,
            min_probability=args.min_prob,
            uncertain_agreement=args.uncertain_agreement,
            confident_probability=args.confident_prob,
            confident_margin_s=args.confident_margin,
            pause_agreement=args.pause_agreement,
        ),
        left_context_s=args.left_context,
        max_window_s=args.max_window,
        final_cover_s=args.final_cover,
        utterance_context_s=args.utterance_context,
        final_beam_size=args.final_beam,
        pause_beam_size=args.pause_beam,
        context_chars=args.context_chars,
        decode=DecodeOptions(
            min_encode_s=args.min_encode,
            encode_step_s=args.encode_step,
            beam_size=args.beam,
        ),
        vad=VadConfig(pause_s=args.pause, hangover_s=args.hangover),
    )


def settings_title(args: argparse.Namespace) -> str:
    return (
        f"tiny.en int8, {args.threads} thread(s), charge={args.charge}, "
        f"tick={args.tick}s, margin={args.margin}s, min prob={args.min_prob} "
        f"(needs {args.uncertain_agreement}), confident={args.confident_prob} "
        f"(margin {args.confident_margin}s), pause needs {args.pause_agreement}, "
        f"left context={args.left_context}s, max window={args.max_window}s, "
        f"final cover={args.final_cover}s, utterance context={args.utterance_context}s, "
        f"beam={args.beam}/{args.pause_beam}/{args.final_beam}, "
        f"min encode={args.min_encode}s, pause={args.pause}s, hangover={args.hangover}s"
    )


def load_file(path: Path, lead_silence: float) -> np.ndarray:
    audio = load_audio(path)
    if lead_silence > 0:  # shifts every window: how much of a result is luck
        lead = np.zeros(round(lead_silence * 16_000), dtype=np.float32)
        audio = np.concatenate([lead, audio])
    return audio


def offline_text(model: WhisperModelShared, audio: np.ndarray) -> str:
    segments, _ = model.model.transcribe(audio, beam_size=5)
    return " ".join(s.text.strip() for s in segments)


def run_file(
    model: WhisperModelShared,
    config: AsrConfig,
    rel: str,
    ref: str,
    audio: np.ndarray,
    offline: str,
) -> FileResult:
    """Stream ``audio`` once through a fresh stage on a virtual-time loop and score it."""
    seconds = len(audio) / 16_000
    cpu0 = time.process_time()
    run = run_virtual(stream_array(audio, model, config))
    cpu = time.process_time() - cpu0
    hist = run.metrics.histograms.get("model.whisper.compute")
    busy = hist.total if hist is not None else 0
    finals: list[str] = []
    latencies: list[float] = []
    starts: dict[str, int] = {}
    first_seen: dict[str, float] = {}
    n_words = 0
    for now, packet in run.events:
        ev = packet.payload
        if isinstance(ev, SpeechStarted):
            starts[ev.utterance_id] = ev.t
        elif isinstance(ev, TranscriptFinal):
            if ev.text:
                finals.append(ev.text)
            n_words += len(ev.words)
            latencies += [(now - w.end) / NS_PER_S for w in ev.words]
        if isinstance(ev, (TranscriptFinal, TranscriptPartial)) and ev.text:
            uid = ev.utterance_id
            if uid not in first_seen and uid in starts:
                first_seen[uid] = (now - starts[uid]) / NS_PER_S
    hyp = " ".join(finals)
    e_s, n_ref = word_errors(ref, hyp)
    e_o, _ = word_errors(ref, offline)
    return FileResult(
        rel,
        seconds,
        n_ref,
        e_s,
        e_o,
        latencies,
        list(first_seen.values()),
        cpu,
        busy / NS_PER_S,
        n_words,
        hyp,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--match", default="", help="only files whose path contains this")
    add_settings(parser)
    parser.add_argument("--no-offline", action="store_true")
    parser.add_argument("--offline-cache", type=Path, help="JSON file caching offline texts")
    args = parser.parse_args(argv)

    model = WhisperModelShared(WhisperConfig(cpu_threads=args.threads))
    config = config_from(args)
    cache: dict[str, str] = {}
    if args.offline_cache is not None and args.offline_cache.exists():
        cache = json.loads(args.offline_cache.read_text(encoding="utf-8"))
    rows = []
    tot = {"e_s": 0, "e_o": 0, "n": 0, "audio": 0.0, "cpu": 0.0, "busy": 0.0, "nonspeech": 0}
    latencies: list[float] = []
    firsts: list[float] = []
    for rel, ref in read_refs(args.data):
        if args.match not in rel:
            continue
        path = args.data / rel
        if not path.exists():
            print(f"skip {rel}: missing", file=sys.stderr)
            continue
        audio = load_file(path, args.lead_silence)
        offline = cache.get(rel, "")
        if not args.no_offline and rel not in cache:
            offline = cache[rel] = offline_text(model, audio)
        r = run_file(model, config, rel, ref, audio, offline)
        if r.n_ref:
            tot["e_s"] += r.e_stream
            tot["e_o"] += r.e_offline
            tot["n"] += r.n_ref
            latencies += r.latencies
            firsts += r.firsts
        else:
            tot["nonspeech"] += r.n_words
        tot["audio"] += r.seconds
        tot["cpu"] += r.cpu_s
        tot["busy"] += r.busy_s
        rows.append(
            [
                rel[-40:],
                round(r.seconds, 1),
                round(r.e_stream / r.n_ref, 3) if r.n_ref else "-",
                round(r.e_offline / r.n_ref, 3) if r.n_ref and not args.no_offline else "-",
                round(median(r.firsts), 2) if r.firsts else "-",
                round(pctl(r.latencies, 50), 2) if r.latencies else "-",
                round(pctl(r.latencies, 90), 2) if r.latencies else "-",
                round(r.cpu_s / r.seconds, 3),
                round(r.busy_s / r.seconds, 3),
                r.n_words if not r.n_ref else "-",
            ]
        )
        print(f"{rel}: {r.hyp!r}", file=sys.stderr)
    if args.offline_cache is not None:
        args.offline_cache.write_text(json.dumps(cache, indent=1), encoding="utf-8")
    headers = ["file", "audio_s", "wer_s", "wer_off", "first_s", "c_p50", "c_p90", "cpu/s", "rtf"]
    headers.append("nonspeech")
    wer_s = tot["e_s"] / tot["n"] if tot["n"] else 0.0
    wer_o = tot["e_o"] / tot["n"] if tot["n"] else 0.0
    cpu_ps = tot["cpu"] / tot["audio"] if tot["audio"] else 0.0
    p50 = pctl(latencies, 50) if latencies else float("nan")
    p90 = pctl(latencies, 90) if latencies else float("nan")
    rows.append(
        [
            "ALL",
            round(tot["audio"], 1),
            round(wer_s, 3),
            round(wer_o, 3),
            round(median(firsts), 2) if firsts else "-",
            round(p50, 2),
            round(p90, 2),
            round(cpu_ps, 3),
            round(tot["busy"] / tot["audio"], 3) if tot["audio"] else "-",
            tot["nonspeech"],
        ]
    )
    print_table(f"streaming ASR ({settings_title(args)})", headers, rows)
    print(
        f"asr: wer_stream={wer_s:.3f} wer_offline={wer_o:.3f} commit_p50_s={p50:.2f} "
        f"commit_p90_s={p90:.2f} nonspeech_words={tot['nonspeech']} "
        f"cpu_s_per_audio_s={cpu_ps:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
