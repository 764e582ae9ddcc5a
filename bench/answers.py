"""Answer quality: the development QA set through the real server pipeline, scored by rules.

Usage: ``python -m bench.answers [--data DIR] [--lm-url URL --lm-model NAME]
[--serve-llamacpp [GGUF]] [--instructions TEXT] [--voice piper|espeak] [--cases a,b]
[--split all|dev|held-out]``

A ``streamkit serve`` subprocess runs the ``assistant`` pipeline (streaming Whisper ASR →
change-gated vision → fusion → the language model, with the markup guard). For each case of
``bench/answer_cases.py`` (43 cases: general knowledge, scene questions over real photos and
videos, questions the camera cannot answer, multi-turn memory, requests) a **fresh session**
connects, streams the case's video as JPEG frames (5 fps, looped; a still photo is resent at
the same rate) while it speaks each turn at real-time pace, then waits for the answer.

Speech: the data set holds no recorded *questions*, so every turn is **synthesized**
(``--voice``) and cached in a temporary folder; the ASR then hears synthetic speech, which is
stated here and in the table title. ``piper`` (the default) is the bundled Piper voice
(en_US-joe-medium, the voice of the spoken answers): its questions rise and fall like a
person's. ``espeak`` is espeak-ng (Debian, ``en-us``, 140 words/min; the questions are worded
so that Whisper tiny.en hears it right): flat and robotic, and Smart Turn hears most of its
questions as unfinished (P(complete) >= 0.9 for 7 of the 42 questions, 27 of 42 with Piper),
so those turns end only at the maximum silence, 800 ms. The end-of-turn model is trained on
people; the default voice is the one that speaks like them. What the ASR heard is reported
beside each answer (``asr_wer``), so an ASR miss can be told from an LM miss;
``eos_final_ms`` is end of speech → the last final (the turn declared over), ``eos_tok_ms``
→ the first answer token.

Scoring (``bench/answer_score.py``): expected facts, refusal phrases for unanswerable
questions, invented colours/brands/objects (named in the answer, but in no observation the
client received, nothing the user said and no expected fact), leaked markup, third-person
narration, empty or over-long answers. ``score`` is the fraction of cases that pass; the
held-out third of the set (``Case.held_out``) is also reported alone.

``--lm-url`` runs the same cases against any OpenAI-compatible server (``--lm http``);
``--serve-llamacpp`` starts the real llama.cpp server (``llama_cpp.server``, the dev extra) on
loopback with the bundled GGUF (or the one given) and points the assistant at it.

Last line, exactly:
``answers: cases=<n> score=<x> leaked_markup=<n> third_person=<n> invented=<n>
eos_to_first_token_p50_ms=<n>``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import pctl, print_table  # noqa: E402
from bench.answer_cases import CASES, Case  # noqa: E402
from bench.answer_media import FPS, media_frames  # noqa: E402
from bench.answer_score import score  # noqa: E402
from streamkit.asr.textnorm import word_errors  # noqa: E402
from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock  # noqa: E402
from streamkit.core.events import (  # noqa: E402
    Observation,
    ResponseDone,
    SpeechStopped,
    TranscriptFinal,
)
from streamkit.sources.media_io import load_audio  # noqa: E402
from streamkit.transport.client import Client  # noqa: E402

if TYPE_CHECKING:
    from streamkit.tts.piper import PiperEngine


@dataclass
class Outcome:
    case: Case
    heard: str = ""
    answer: str = ""
    eos_ms: float = float("nan")
    final_ms: float = float("nan")  # end of speech → the last turn's last final arrived
    observations: list[str] = field(default_factory=list)
    error: str = ""


# -- inputs ---------------------------------------------------------------------------------


VOICE_NAMES = {"piper": "Piper (en_US-joe-medium)", "espeak": "espeak-ng (en-us, 140 wpm)"}
"""Who may speak the questions (``--voice``), as the table title names them: the bundled
Piper voice (natural prosody) or espeak-ng (flat and robotic)."""


@functools.cache
def _piper() -> PiperEngine:
    from streamkit.tts.piper import PiperEngine

    return PiperEngine()


def synthesize(text: str, cache: Path, voice: str = "piper") -> npt.NDArray[np.float32]:
    """``text`` spoken by ``voice`` (:data:`VOICE_NAMES`) as 16 kHz float32 (cached by voice and
    text; a Piper question is synthesised outside any event loop, so ``main`` does it first)."""
    path = cache / f"{voice}-{hashlib.sha1(text.encode()).hexdigest()[:16]}.wav"
    if not path.exists():
        if voice == "piper":
            engine = _piper()

            async def speak() -> list[npt.NDArray[np.float32]]:
                return [chunk.samples async for chunk in engine.synthesize(text)]

            audio = np.concatenate(asyncio.run(speak()))
            sf.write(path, soxr.resample(audio, engine.sample_rate, 16_000), 16_000)
        else:
            subprocess.run(
                ["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), text],
                check=True,
                capture_output=True,
            )
    return load_audio(path)


# -- one case -------------------------------------------------------------------------------


async def _send_video(client: Client, frames: list[tuple[int, bytes]], stop: asyncio.Event) -> None:
    clock = LoopClock()
    step = NS_PER_S // FPS
    start = clock.now()
    i = 0
    while not stop.is_set():
        await client.send_video(frames[i % len(frames)][1])
        i += 1
        await clock.sleep_until(start + i * step)


async def run_case(
    url: str,
    case: Case,
    data: Path,
    cache: Path,
    gap_s: float,
    timeout_s: float = 60.0,
    voice: str = "piper",
) -> Outcome:
    outcome = Outcome(case)
    frames = media_frames(case.media, data) if case.media else []
    silence = np.zeros(int(gap_s * 16000), np.float32)
    async with Client.connect(url) as client:
        await client.update(pipeline="assistant", video=bool(frames), metrics_interval_ms=0)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            if frames:
                group.create_task(_send_video(client, frames, stop))
            try:
                await client.stream_audio(np.zeros(8000, np.float32))
                for n, turn in enumerate(case.turns, start=1):
                    await client.stream_audio(synthesize(turn, cache, voice))
                    await client.stream_audio(silence)
                    waited = 0.0
                    while len(client.of_type(ResponseDone)) < n and waited < timeout_s:
                        await client.stream_audio(np.zeros(4000, np.float32))
                        waited += 0.25
            finally:
                stop.set()
        finals = client.of_type(TranscriptFinal)
        done = client.of_type(ResponseDone)
        if finals:
            last = finals[-1].utterance_id
            outcome.heard = " ".join(f.text.strip() for f in finals if f.utterance_id == last)
        if len(done) >= len(case.turns):
            outcome.answer = done[len(case.turns) - 1].text.strip()
        else:
            outcome.error = f"{len(done)} answers for {len(case.turns)} turns"
        eos = client.latency.eos_to_first_token
        if eos:
            outcome.eos_ms = eos[-1] / NS_PER_MS
        stops = [(r.event, r.at) for r in client.received if isinstance(r.event, SpeechStopped)]
        lasts = [
            (r.event, r.at)
            for r in client.received
            if isinstance(r.event, TranscriptFinal) and r.event.is_last
        ]
        if stops and lasts and lasts[-1][0].utterance_id == stops[-1][0].utterance_id:
            eos_at = client.latency.local(stops[-1][0].t)
            outcome.final_ms = (lasts[-1][1] - eos_at) / NS_PER_MS
        for obs in client.of_type(Observation):
            outcome.observations.append(obs.summary)
            outcome.observations.extend(d.text for d in obs.detections if d.text)
    return outcome


# -- servers --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(
    cond: object, proc: subprocess.Popen[bytes], what: str, log: Path, limit_s: float = 300
) -> None:
    waited = 0.0
    while not cond():  # type: ignore[operator]
        if proc.poll() is not None:
            err = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{what} exited: {err[-2000:]}")
        asyncio.run(LoopClock().sleep(200 * NS_PER_MS))
        waited += 0.2
        if waited > limit_s:
            raise RuntimeError(f"{what} did not start")


def start_llamacpp_server(gguf: str | None, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The real llama.cpp server (llama-cpp-python[server]) on loopback; returns its /v1 URL.
    Its log goes to a file (a full pipe would stall it)."""
    from streamkit.lm.models import bundled_model_path

    model = gguf or str(bundled_model_path())
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "--n_threads", "1", "--n_ctx", "2048"]  # fmt: skip
    log = tmp / "llama_cpp_server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    _wait(up, proc, "llama_cpp.server", log)
    return proc, f"http://127.0.0.1:{port}/v1"


def start_streamkit(args: argparse.Namespace, tmp: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "streamkit", "serve", "--port", "0", "--port-file",
           str(tmp / "port"), "--pipeline", "assistant"]  # fmt: skip
    if args.lm_url:
        cmd += ["--lm", "http", "--lm-url", args.lm_url, "--lm-model", args.lm_model or "default"]
    else:
        cmd += ["--lm", args.lm]
        if args.lm_model:
            cmd += ["--lm-model", args.lm_model]
    if args.instructions is not None:
        cmd += ["--instructions", args.instructions]
    cmd += ["--grounding", args.grounding]
    with (tmp / "serve.log").open("wb") as log:  # a file: a full pipe would stall the server
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    if proc.poll() is None:
        proc.kill()


# -- report ---------------------------------------------------------------------------------


def _asr_wer(spoken: str, heard: str) -> float:
    errors, words = word_errors(spoken, heard)
    return errors / words if words else float("nan")


def _cell(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def report(outcomes: list[Outcome], title: str) -> None:
    rows = []
    passed = {"all": 0, "dev": 0, "held-out": 0}
    totals = {"all": 0, "dev": 0, "held-out": 0}
    markup = third = made_up = 0
    for o in outcomes:
        case = o.case
        verdict = score(
            o.answer,
            expect=case.expect,
            refuse=case.refuse,
            known=[*o.observations, *case.turns, o.heard, *case.allow],
        )
        ok = verdict.passed and not o.error
        reasons = ("; ".join(verdict.reasons) or "ok") if not o.error else o.error
        part = "held-out" if case.held_out else "dev"
        for key in ("all", part):
            totals[key] += 1
            passed[key] += int(ok)
        markup += int(verdict.markup)
        third += int(verdict.third)
        made_up += int(bool(verdict.invented))
        rows.append(
            [
                case.name,
                case.kind,
                "H" if case.held_out else "",
                _cell(o.heard, 36),
                _asr_wer(case.turns[-1], o.heard),
                _cell(o.answer),
                o.final_ms,
                o.eos_ms,
                "pass" if ok else "FAIL",
                _cell(reasons, 40),
            ]
        )
    print_table(
        title,
        [
            "case",
            "kind",
            "split",
            "asr heard (last turn)",
            "asr_wer",
            "answer",
            "eos_final_ms",
            "eos_tok_ms",
            "result",
            "why",
        ],
        rows,
    )
    kinds: dict[str, list[int]] = {}
    for o, row in zip(outcomes, rows, strict=True):
        kinds.setdefault(o.case.kind, []).append(int(row[8] == "pass"))
    print_table(
        "by kind and split",
        ["part", "cases", "passed", "score"],
        [[k, len(v), sum(v), sum(v) / len(v)] for k, v in kinds.items()]
        + [
            [k, totals[k], passed[k], passed[k] / totals[k] if totals[k] else float("nan")]
            for k in ("dev", "held-out")
        ],
    )
    eos = [o.eos_ms for o in outcomes if o.eos_ms == o.eos_ms]
    eos_p50 = pctl(eos, 50)
    finals = [o.final_ms for o in outcomes if o.final_ms == o.final_ms]
    print(
        f"end of speech → last final p50 {pctl(finals, 50):.0f} ms, p90 "
        f"{pctl(finals, 90):.0f} ms (the turn is over); → first token p50 {eos_p50:.0f} ms, "
        f"p90 {pctl(eos, 90):.0f} ms"
    )
    n = totals["all"]
    print(
        f"answers: cases={n} score={passed['all'] / n if n else 0:.3f} leaked_markup={markup} "
        f"third_person={third} invented={made_up} "
        f"eos_to_first_token_p50_ms={'nan' if eos_p50 != eos_p50 else round(eos_p50)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "tests" / "data"))
    parser.add_argument("--lm", default="auto")
    parser.add_argument("--lm-url", default=None, help="OpenAI-compatible server (…/v1)")
    parser.add_argument("--lm-model", default=None, help="served model name or GGUF path")
    parser.add_argument(
        "--serve-llamacpp",
        nargs="?",
        const="",
        default=None,
        metavar="GGUF",
        help="start llama_cpp.server on loopback (bundled GGUF by default) and use it",
    )
    parser.add_argument("--instructions", default=None, help="system prompt for the assistant")
    parser.add_argument(
        "--grounding",
        default="facts",
        choices=["facts", "model"],
        help="facts: scene/memory questions answered from the facts; model: by the model",
    )
    parser.add_argument(
        "--voice", default="piper", choices=sorted(VOICE_NAMES), help="who speaks the questions"
    )
    parser.add_argument("--cases", default=None, help="comma-separated case names")
    parser.add_argument("--split", default="all", choices=["all", "dev", "held-out"])
    parser.add_argument("--gap-s", type=float, default=1.2, help="silence after each turn")
    parser.add_argument(
        "--answer-timeout-s", type=float, default=60.0, help="wait this long for each answer"
    )
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        print("bench/answers: needs espeak-ng (apt install espeak-ng)", file=sys.stderr)
        return 2
    cases = [c for c in CASES if args.split == "all" or (c.held_out == (args.split == "held-out"))]
    if args.cases:
        names = set(args.cases.split(","))
        cases = [c for c in cases if c.name in names]
    data = Path(args.data)
    helpers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            backend = f"lm={args.lm} grounding={args.grounding}"
            if args.serve_llamacpp is not None:
                proc, args.lm_url = start_llamacpp_server(args.serve_llamacpp or None, Path(tmp))
                helpers.append(proc)
                args.lm_model = args.lm_model or "default"
            if args.lm_url:
                model = args.lm_model or "default"
                backend = f"lm=http {args.lm_url} model={model} grounding={args.grounding}"
            port_file = Path(tmp) / "port"
            server = start_streamkit(args, Path(tmp))
            helpers.append(server)
            _wait(
                lambda: port_file.exists() and port_file.read_text(),
                server,
                "streamkit serve",
                Path(tmp) / "serve.log",
            )
            url = f"ws://127.0.0.1:{int(port_file.read_text())}/ws"
            load0 = Path("/proc/loadavg").read_text().split()[0]
            for turn in {t for case in cases for t in case.turns}:  # before any loop runs
                synthesize(turn, Path(tmp), args.voice)
            outcomes = []
            for case in cases:
                outcomes.append(
                    asyncio.run(
                        run_case(
                            url,
                            case,
                            data,
                            Path(tmp),
                            args.gap_s,
                            args.answer_timeout_s,
                            args.voice,
                        )
                    )
                )
                print(f"{case.name}: {outcomes[-1].answer!r}", file=sys.stderr, flush=True)
            load1 = Path("/proc/loadavg").read_text().split()[0]
        finally:
            for proc in reversed(helpers):
                _stop(proc)
    report(
        outcomes,
        f"answers: {len(outcomes)} cases, one fresh session each, through streamkit serve "
        f"({backend}); questions synthesized by {VOICE_NAMES[args.voice]}; "
        f"{os.cpu_count()} CPUs, load {load0} → {load1}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
