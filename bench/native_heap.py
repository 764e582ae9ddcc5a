"""Native heap per model call: do the models keep memory per distinct input shape?

Each case runs in a fresh subprocess and calls one model ``--calls`` times with inputs of
varying length, reading glibc's in-use bytes (``mallinfo2``, after ``malloc_trim``) after the
first call, half-way and after the last: what the model's native code still holds. ``late``
(the last line's figures) is the growth over the second half, after a warm-up.

- ``whisper/free``: the encoder length follows the window (``encode_step_s=0.02``, the old
  behaviour); ``whisper/rounded``: rounded up to whole seconds (the default). CTranslate2's
  oneDNN convolutions cache one primitive per input shape (up to 1,024).
- ``piper/patterns``: onnxruntime's default session (memory patterns on);
  ``piper/default``: as ``streamkit.tts.piper`` runs it (memory patterns off).

Window lengths are 3.5 … 9.5 s of low noise (the encoder runs whatever the text); sentences
are 2–24 random words. CPU seconds are the subprocess's, for the whole loop (a loaded
machine inflates wall time, not CPU time much). Last line: ``native_heap:
whisper_free_late_mb=… whisper_rounded_late_mb=… piper_patterns_late_mb=…
piper_default_late_mb=…``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import print_table  # noqa: E402
from streamkit.commands.heap import heap_stats, trim  # noqa: E402

MB = 1024 * 1024
CASES = ["whisper/free", "whisper/rounded", "piper/patterns", "piper/default"]
WORDS = "the quick brown fox jumps over a lazy dog while seven small cats watch the old barn"


def _in_use() -> int:
    trim()
    stats = heap_stats()
    return stats.in_use if stats is not None else 0


def _whisper(step: float, calls: int) -> list[int]:
    from streamkit.asr.whisper import DecodeOptions, WhisperModelShared

    model = WhisperModelShared()
    opts = DecodeOptions(encode_step_s=step)
    rng = np.random.default_rng(0)
    lengths = rng.permutation(np.arange(56_000, 152_000, 640))[:calls]
    marks = []
    for n in lengths:
        model.decode_window((rng.standard_normal(int(n)) * 0.01).astype(np.float32), "", opts)
        marks.append(_in_use())
    return marks


def _piper(patterns: bool, calls: int) -> list[int]:
    import onnxruntime as ort

    from streamkit.tts.piper import PiperEngine

    engine = PiperEngine()
    if patterns:  # the baseline: onnxruntime's defaults
        options = ort.SessionOptions()
        options.intra_op_num_threads = engine.config.threads
        options.inter_op_num_threads = 1
        session: Any = ort.InferenceSession(
            str(engine.model_path), options, providers=["CPUExecutionProvider"]
        )
        engine._session = session  # the baseline session
    rng = random.Random(0)
    words = WORDS.split()
    marks = []
    try:
        for _ in range(calls):
            text = " ".join(rng.choice(words) for _ in range(rng.randrange(2, 25))) + "."
            engine._synthesize(text)  # one blocking call
            marks.append(_in_use())
    finally:
        engine.close()
    return marks


def _child(case: str, calls: int) -> None:
    start = time.process_time()
    if case.startswith("whisper"):
        marks = _whisper(0.02 if case == "whisper/free" else 1.0, calls)
    else:
        marks = _piper(case == "piper/patterns", calls)
    print(json.dumps({"marks": marks, "cpu_s": time.process_time() - start}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60, help="model calls per case")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        _child(args.case, args.calls)
        return 0
    if heap_stats() is None:
        print("native_heap: needs glibc (mallinfo2)", file=sys.stderr)
        return 1
    rows, growth = [], {}
    for case in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", case, "--calls", str(args.calls)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        marks = result["marks"]
        half = marks[len(marks) // 2]
        growth[case] = (marks[-1] - half) / MB
        rows.append(
            [
                case,
                marks[0] / MB,
                half / MB,
                marks[-1] / MB,
                (marks[-1] - marks[0]) / MB,
                growth[case],
                result["cpu_s"],
            ]
        )
    print_table(
        f"native heap in use (MB, glibc, after malloc_trim) over {args.calls} calls of "
        "varying input length; each case in its own process",
        ["case", "after_first", "after_half", "after_last", "growth", "late", "cpu_s"],
        rows,
    )
    print(
        f"native_heap: whisper_free_late_mb={growth['whisper/free']:.1f} "
        f"whisper_rounded_late_mb={growth['whisper/rounded']:.1f} "
        f"piper_patterns_late_mb={growth['piper/patterns']:.1f} "
        f"piper_default_late_mb={growth['piper/default']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
