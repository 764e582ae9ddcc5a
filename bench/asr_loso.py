"""Leave-one-source-out evaluation of streaming ASR settings: no setting is chosen on the
file it is scored on.

Usage: ``python -m bench.asr_loso --data ../shared/data --grid final_cover=0.3,0.6
[--grid tick=0.55,0.65 ...] [--results-cache FILE]`` (any setting of ``bench/asr.py``, by its
flag name with ``_`` for ``-``; the grid is the product of the lists).

Every candidate streams every file once (``bench/asr.py``'s run: virtual time, decodes
charged their CPU time). The files are grouped by *source* (``speech/utterances/<source>/``,
``speech/longform``, ``speech/multispeaker``, ``av/grid``, ``video``: the recordings of one
corpus, speaker or microphone). For each source, the candidate with the fewest streaming
errors in excess of offline on the *other* sources is chosen (among those that keep commit
p50 ≤ 1.0 s, p90 ≤ 2.0 s, ≤ 0.35 CPU-s per audio-s and no words on non-speech there; ties:
the lower p90), then scored on the held-out source. The table gives, per held-out source,
the chosen candidate and its WER gap there (streaming − offline, points); below it, every
candidate on all files. Last line::

    asr_loso: sources=<n> heldout_gap_pts=<pooled> gap_min=<x> gap_max=<x> gap_sd=<x>
    same_choice=<yes|no> commit_p50_s=<x> commit_p90_s=<x> cpu_s_per_audio_s=<x>

(pooled over the held-out sources, each scored with its own choice).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import asdict
from pathlib import Path
from statistics import pstdev

from bench._common import pctl, print_table
from bench.asr import (
    DEFAULT_DATA,
    FileResult,
    add_settings,
    config_from,
    load_file,
    offline_text,
    read_refs,
    run_file,
)
from streamkit.asr.whisper import WhisperConfig, WhisperModelShared

LIMITS = {"p50": 1.0, "p90": 2.0, "cpu": 0.35}


def source_of(rel: str) -> str:
    parts = rel.split("/")
    if parts[:2] == ["speech", "utterances"] and len(parts) > 3:
        return parts[2]
    if parts[0] == "speech" and len(parts) > 2:
        return parts[1]
    return parts[1] if parts[0] == "av" and len(parts) > 2 else parts[0]


def parse_grid(items: list[str]) -> list[dict[str, str]]:
    keys, values = [], []
    for item in items:
        key, _, vals = item.partition("=")
        keys.append(key.strip().replace("-", "_"))
        values.append([v.strip() for v in vals.split(",") if v.strip()])
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)] or [{}]


def label(candidate: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in candidate.items()) or "default"


def summary(results: list[FileResult]) -> dict[str, float]:
    speech = [r for r in results if r.n_ref]
    lat = [x for r in speech for x in r.latencies]
    seconds = sum(r.seconds for r in results)
    words = sum(r.n_ref for r in speech)
    extra = sum(r.e_stream - r.e_offline for r in speech)
    return {
        "files": len(results),
        "words": words,
        "extra": extra,
        "gap_pts": 100 * extra / words if words else float("nan"),
        "wer": sum(r.e_stream for r in speech) / words if words else float("nan"),
        "wer_offline": sum(r.e_offline for r in speech) / words if words else float("nan"),
        "p50": pctl(lat, 50),
        "p90": pctl(lat, 90),
        "cpu": sum(r.cpu_s for r in results) / seconds if seconds else float("nan"),
        "nonspeech": sum(r.n_words for r in results if not r.n_ref),
    }


def row_of(s: dict[str, float]) -> list[float]:
    keys = ("extra", "gap_pts", "wer", "wer_offline", "p50", "p90", "cpu", "nonspeech")
    return [s[k] for k in keys]


def feasible(s: dict[str, float]) -> bool:
    return (
        not s["nonspeech"]
        and not s["p50"] > LIMITS["p50"]
        and not s["p90"] > LIMITS["p90"]
        and not s["cpu"] > LIMITS["cpu"]
    )


def choose(by_candidate: dict[str, list[FileResult]], keep: set[str]) -> str:
    """The candidate with the fewest extra errors on the files in ``keep``."""
    scored = []
    for name, results in by_candidate.items():
        s = summary([r for r in results if r.rel in keep])
        scored.append((not feasible(s), s["extra"], s["p90"], name))
    return min(scored)[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--grid", action="append", default=[], help="flag=v1,v2 (repeat)")
    parser.add_argument("--offline-cache", type=Path, help="JSON file caching offline texts")
    parser.add_argument("--results-cache", type=Path, help="JSON file caching candidate runs")
    add_settings(parser)
    args = parser.parse_args(argv)
    candidates = parse_grid(args.grid)
    model = WhisperModelShared(WhisperConfig(cpu_threads=args.threads))
    rows = read_refs(args.data)
    offline: dict[str, str] = {}
    if args.offline_cache is not None and args.offline_cache.exists():
        offline = json.loads(args.offline_cache.read_text(encoding="utf-8"))
    cached: dict[str, list[dict[str, object]]] = {}
    if args.results_cache is not None and args.results_cache.exists():
        cached = json.loads(args.results_cache.read_text(encoding="utf-8"))
    audio = {rel: load_file(args.data / rel, args.lead_silence) for rel, _ in rows}
    for rel in audio:
        if rel not in offline:
            offline[rel] = offline_text(model, audio[rel])
    if args.offline_cache is not None:
        args.offline_cache.write_text(json.dumps(offline, indent=1), encoding="utf-8")
    by_candidate: dict[str, list[FileResult]] = {}
    base = vars(args)
    for candidate in candidates:
        name = label(candidate)
        settings = argparse.Namespace(**base)
        for key, value in candidate.items():
            default = getattr(settings, key)
            setattr(settings, key, type(default)(value) if default is not None else value)
        skip = {"grid", "results_cache", "offline_cache"}
        knobs = sorted((k, v) for k, v in vars(settings).items() if k not in skip)
        key = f"{name} | {json.dumps(knobs, default=str)}"
        if key in cached:
            by_candidate[name] = [FileResult(**r) for r in cached[key]]  # type: ignore[arg-type]
            continue
        print(f"asr_loso: running {name}", file=sys.stderr)
        config = config_from(settings)
        results = [run_file(model, config, rel, ref, audio[rel], offline[rel]) for rel, ref in rows]
        by_candidate[name] = results
        cached[key] = [asdict(r) for r in results]
        if args.results_cache is not None:
            args.results_cache.write_text(json.dumps(cached), encoding="utf-8")

    sources: dict[str, set[str]] = {}
    for rel, _ in rows:
        sources.setdefault(source_of(rel), set()).add(rel)
    table = []
    held: list[FileResult] = []
    gaps: list[float] = []
    choices = set()
    for source, files in sorted(sources.items()):
        chosen = choose(by_candidate, {rel for rel, _ in rows} - files)
        choices.add(chosen)
        mine = [r for r in by_candidate[chosen] if r.rel in files]
        held += mine
        s = summary(mine)
        if s["words"]:
            gaps.append(s["gap_pts"])
        table.append([source, s["files"], s["words"], chosen, *row_of(s)])
    pooled = summary(held)
    table.append(["HELD-OUT (pooled)", pooled["files"], pooled["words"], "-", *row_of(pooled)])
    headers = ["held-out source", "files", "words", "chosen on the others", "extra_err"]
    headers += ["gap_pts", "wer_s", "wer_off", "c_p50", "c_p90", "cpu/s", "nonspeech"]
    print_table(f"leave-one-source-out ({args.data})", headers, table)
    every = []
    for name, results in by_candidate.items():
        s = summary(results)
        every.append([name, s["extra"], s["gap_pts"], s["p50"], s["p90"], s["cpu"], s["nonspeech"]])
    print_table(
        "every candidate on all files (for reference only: not how settings are chosen)",
        ["candidate", "extra_err", "gap_pts", "c_p50", "c_p90", "cpu/s", "nonspeech"],
        every,
    )
    sd = pstdev(gaps) if len(gaps) > 1 else 0.0
    nan = float("nan")
    print(
        f"asr_loso: sources={len(sources)} heldout_gap_pts={pooled['gap_pts']:.2f} "
        f"gap_min={min(gaps, default=nan):.2f} gap_max={max(gaps, default=nan):.2f} "
        f"gap_sd={sd:.2f} same_choice={'yes' if len(choices) == 1 else 'no'} "
        f"commit_p50_s={pooled['p50']:.2f} commit_p90_s={pooled['p90']:.2f} "
        f"cpu_s_per_audio_s={pooled['cpu']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
