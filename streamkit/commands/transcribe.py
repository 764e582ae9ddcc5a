"""``streamkit transcribe FILE [--stream]``: transcribe any media file's audio track.

Offline (default): faster-whisper ``transcribe`` over the whole file (beam 5, Silero VAD
filter), one line per segment. ``--stream``: the file goes through the streaming ASR stage
at real-time pace on a virtual clock (every decode really runs and its cost is charged), and
the events are printed as they were emitted: speech start/stop, partials, finals with their
emission time; ``--realtime`` streams on the wall clock instead (decodes in a thread), and
``--json`` prints one JSON event per line.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "transcribe a media file (offline, or --stream through the streaming ASR)"

__all__ = ["HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="any media file with an audio track (decoded with PyAV)")
    parser.add_argument(
        "--stream", action="store_true",
        help="run the streaming ASR as it would run live (events with their times)",
    )
    parser.add_argument(
        "--realtime", action="store_true", help="with --stream: wall-clock pace, not virtual"
    )
    parser.add_argument(
        "--json", action="store_true",
        help="one JSON object per line: a segment (offline) or an event (--stream)",
    )
    parser.add_argument(
        "--partials", action="store_true", help="with --stream: also print the partials"
    )
    parser.add_argument(
        "--language", default="auto",
        help="spoken language for a multilingual model (en, de, …; auto: detect); "
        "English-only models (the bundled tiny.en) ignore it",
    )
    parser.add_argument(
        "--asr-model", "--model", dest="model", default=None,
        help="CTranslate2 Whisper model directory or size name (default: bundled tiny.en)",
    )
    parser.add_argument("--asr-device", "--device", dest="device", default="cpu",
                        help="cpu or cuda")
    parser.add_argument("--asr-compute-type", "--compute-type", dest="compute_type",
                        default="int8", help="int8, float16, …")
    parser.add_argument("--asr-threads", "--threads", dest="threads", type=int, default=1,
                        help="CTranslate2 CPU threads")
    parser.add_argument("--beam", type=int, default=5, help="offline: beam size")


def run(args: argparse.Namespace) -> int:
    from streamkit.asr.whisper import ModelNotFound, WhisperConfig, WhisperModelShared
    from streamkit.commands.errors import UserError, read_audio

    if (args.partials or args.realtime) and not args.stream:
        raise UserError("--partials and --realtime describe the streaming run: add --stream")
    if args.stream and args.language not in ("auto", "en"):
        raise UserError("--stream decodes English (the streaming decoder's prompt is English); "
                        "drop --stream to transcribe other languages")
    audio = read_audio(args.file)
    try:
        model = WhisperModelShared(
            WhisperConfig(
                model=args.model,
                device=args.device,
                compute_type=args.compute_type,
                cpu_threads=args.threads,
            )
        )
    except ModelNotFound as error:
        raise UserError(str(error), 3) from None
    if not args.stream:
        language = None if args.language == "auto" or not model.multilingual else args.language
        segments, info = model.model.transcribe(
            audio, beam_size=args.beam, vad_filter=True, language=language
        )
        for segment in segments:
            if args.json:
                record = {"start_s": round(segment.start, 3), "end_s": round(segment.end, 3),
                          "text": segment.text.strip(), "language": info.language}
                print(json.dumps(record, ensure_ascii=False))
            else:
                print(f"[{segment.start:7.2f} → {segment.end:7.2f}] {segment.text.strip()}")
        return 0
    return _stream(audio, model, args)


def _stream(audio: object, model: object, args: argparse.Namespace) -> int:
    import asyncio

    import msgspec
    import numpy as np

    from streamkit.asr.core import AsrConfig
    from streamkit.asr.run import stream_array
    from streamkit.asr.whisper import WhisperModelShared
    from streamkit.core.clock import NS_PER_S
    from streamkit.core.events import (
        SpeechStarted,
        SpeechStopped,
        TranscriptFinal,
        TranscriptPartial,
    )
    from streamkit.testing.virtual import run_virtual

    assert isinstance(model, WhisperModelShared)
    samples = np.asarray(audio, dtype=np.float32)
    if args.realtime:
        run = asyncio.run(stream_array(samples, model, AsrConfig(compute="thread")))
    else:
        run = run_virtual(stream_array(samples, model, AsrConfig(compute="virtual")))
    for now, packet in run.events:
        ev = packet.payload
        at = (now - run.base_time) / NS_PER_S
        if args.json:
            record = {"emitted_s": round(at, 3), "event": msgspec.to_builtins(ev)}
            print(msgspec.json.encode(record).decode())
            continue
        if isinstance(ev, SpeechStarted):
            print(f"[{at:7.2f}] speech started at {(ev.t - run.base_time) / NS_PER_S:.2f} s")
        elif isinstance(ev, SpeechStopped):
            print(f"[{at:7.2f}] speech stopped at {(ev.t - run.base_time) / NS_PER_S:.2f} s")
        elif isinstance(ev, TranscriptPartial):
            if args.partials and ev.text:
                print(f"[{at:7.2f}]   partial: …{ev.text}")
        elif isinstance(ev, TranscriptFinal):
            mark = "final" if ev.is_last else "commit"
            if ev.text or ev.is_last:
                print(f"[{at:7.2f}] {mark:>9}: {ev.text}")
    lag = run.metrics.gauges.get("asr.lag_s")
    hist = run.metrics.histograms.get("model.whisper.compute")
    busy = (hist.total if hist else 0) / NS_PER_S
    seconds = len(samples) / 16_000
    print(
        f"# {seconds:.1f} s of audio, {hist.count if hist else 0} decodes, "
        f"compute {busy:.2f} s (RTF {busy / max(seconds, 1e-9):.3f}), "
        f"last lag {lag.value if lag else 0.0:.2f} s",
        file=sys.stderr,
    )
    return 0
