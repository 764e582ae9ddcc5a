"""N clients stream real speech at real-time pace to one ``streamkit serve``; what did each see?

The server runs as a subprocess (``streamkit serve``, the ``assistant`` pipeline: streaming ASR
+ the bundled language model, loaded once and shared by all sessions). Each client streams
``--lead-s`` of silence (a user does not speak the instant the page connects), then two real
utterances from ``--data`` at real-time pace (20 ms PCM16 frames stamped with their capture
time), each followed by ``--gap-s`` of silence so the VAD ends the utterance and the
assistant answers. Reported per session:

- commit latency: arrival of a word's ``transcript.final`` − the word's end (client clock;
  the server's shared clock mapped with the ``session.created`` offset), p50/p90;
- end of speech → first answer token: first ``response.delta`` − the end of the utterance
  (``speech.stopped`` if sent, else the last final's end);
- audio dropped: samples the client sent that the server did not take (``ws.audio.samples``
  from the session's last ``metrics``) + frames lost in transit (``ws.audio.lost_chunks``);
- ``asr_call_p50_ms`` / ``asr_wait_p50_ms``: Whisper call time and wait for the shared model
  slot (the slot records into one session's registry, so other rows show nan);
- server CPU (utime + stime of the server process over the run) per wall second;
- ``ws_out_p50_ms``: the transport's own share, from the session's lineage: a final (or first
  answer token) produced by the pipeline → written to the socket.

Last line: ``sessions: n=<N> commit_p90_s=<x> eos_to_first_token_p50_ms=<n> dropped_audio_s=<x>``
where commit_p90_s is the worst session's p90 and the token latency the median of all answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import pctl, print_table  # noqa: E402
from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock  # noqa: E402
from streamkit.core.events import ResponseDone, TranscriptFinal  # noqa: E402
from streamkit.sources.media_io import load_audio  # noqa: E402
from streamkit.transport.client import Client  # noqa: E402
from streamkit.transport.protocol import MetricsEvent  # noqa: E402

FILES = [
    "speech/utterances/pocketsphinx_goforward/goforward.wav",
    "speech/utterances/deepspeech/new-home-in-the-stars-16k.wav",
    "speech/utterances/cmu_arctic/cmu_arctic_us_aew_a0003.wav",
    "speech/utterances/librivox_sense_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav",
    "speech/utterances/cmu_arctic/arctic_a0010_pyroomacoustics.wav",
    "speech/utterances/librivox_sense_sensibility/sense_and_sensibility_01_austen_64kb-0930.wav",
]


@dataclass
class SessionResult:
    files: list[str]
    audio_s: float = 0.0
    words: int = 0
    commit_ns: list[int] = field(default_factory=list)
    eos_ns: list[int] = field(default_factory=list)
    answers: int = 0
    dropped_s: float = 0.0
    errors: int = 0
    transcript: str = ""
    whisper_ms: float = float("nan")
    whisper_wait_ms: float = float("nan")
    transport_ms: list[float] = field(default_factory=list)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


async def _session(
    url: str, paths: list[Path], gap_s: float, answer_timeout_s: float, lead_s: float
) -> SessionResult:
    """Stream the files back to back with ``gap_s`` of silence after each, never pausing
    (like a live microphone), then keep streaming silence until every answer is done."""
    result = SessionResult([p.name for p in paths])
    silence = np.zeros(int(gap_s * 16000), np.float32)
    async with Client.connect(url) as client:
        await client.update(pipeline="assistant", metrics_interval_ms=500)
        await client.stream_audio(np.zeros(int(lead_s * 16000), np.float32))
        for path in paths:
            audio = load_audio(path)
            await client.stream_audio(audio)
            await client.stream_audio(silence)
        tick = np.zeros(8000, np.float32)
        waited = 0.0
        while len(client.of_type(ResponseDone)) < len(paths) and waited < answer_timeout_s:
            await client.stream_audio(tick)
            waited += 0.5
        result.audio_s = client.samples_sent / 16000
        sent = client.samples_sent
        metrics = await client.wait_for(
            lambda r: (
                isinstance(r.event, MetricsEvent)
                and r.event.transport.get("ws.audio.samples", 0) >= sent
            ),
            10,
        )
        assert isinstance(metrics.event, MetricsEvent)
        counters = metrics.event.transport
        lost = counters.get("ws.audio.lost_chunks", 0) * 320
        result.dropped_s = (sent - counters.get("ws.audio.samples", 0) + lost) / 16000
        result.errors = counters.get("ws.errors", 0)
        for marks in metrics.event.lineage.values():  # server side: produced → written
            for made, written in (
                ("asr.final", "sent.transcript.final"),
                ("lm.first_token", "sent.response.delta"),
            ):
                if made in marks and written in marks:
                    result.transport_ms.append((marks[written] - marks[made]) / NS_PER_MS)
        hists = metrics.event.snapshot.get("histograms", {})
        if "model.whisper.compute" in hists:
            result.whisper_ms = (hists["model.whisper.compute"]["p50_ns"] or 0) / 1e6
            result.whisper_wait_ms = (hists["model.whisper.wait"]["p50_ns"] or 0) / 1e6
        result.commit_ns = list(client.latency.commit)
        result.eos_ns = list(client.latency.eos_to_first_token)
        result.answers = len(client.of_type(ResponseDone))
        finals = client.of_type(TranscriptFinal)
        result.words = sum(len(f.words) for f in finals)
        result.transcript = " ".join(f.text.strip() for f in finals)
    return result


async def _run(args: argparse.Namespace, url: str) -> list[SessionResult]:
    data = Path(args.data)
    results: list[SessionResult] = []
    async with asyncio.TaskGroup() as group:
        tasks = []
        for i in range(args.sessions):
            paths = [data / FILES[(2 * i) % len(FILES)], data / FILES[(2 * i + 1) % len(FILES)]]
            tasks.append(
                group.create_task(
                    _session(url, paths, args.gap_s, args.answer_timeout_s, args.lead_s)
                )
            )
            await LoopClock().sleep(args.stagger_ms * NS_PER_MS)
    results = [t.result() for t in tasks]
    return results


def _start_server(args: argparse.Namespace, port_file: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "streamkit",
        "serve",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--pipeline",
        "assistant",
        "--lm",
        args.lm,
    ]
    if args.lm_threads is not None:
        cmd += ["--lm-threads", str(args.lm_threads)]
    if args.lm_batch_threads is not None:
        cmd += ["--lm-batch-threads", str(args.lm_batch_threads)]
    if args.asr_threads is not None:
        cmd += ["--asr-threads", str(args.asr_threads)]
    if args.asr_workers is not None:
        cmd += ["--asr-workers", str(args.asr_workers)]
    if args.asr_tick_s is not None:
        cmd += ["--asr-tick-s", str(args.asr_tick_s)]
    if args.asr_busy_tick_s is not None:
        cmd += ["--asr-busy-tick-s", str(args.asr_busy_tick_s)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--data", default=str(ROOT / "tests" / "data"))
    parser.add_argument("--lead-s", type=float, default=1.0, help="silence before speaking")
    parser.add_argument("--gap-s", type=float, default=2.0, help="silence after each utterance")
    parser.add_argument("--answer-timeout-s", type=float, default=20.0)
    parser.add_argument("--stagger-ms", type=int, default=300, help="delay between client starts")
    parser.add_argument("--lm", default="auto")
    parser.add_argument(
        "--lm-threads", type=int, default=None, help="LM CPU threads (server default)"
    )
    parser.add_argument(
        "--lm-batch-threads",
        type=int,
        default=None,
        help="LM prompt-evaluation threads (server default)",
    )
    parser.add_argument(
        "--asr-threads", type=int, default=None, help="CTranslate2 threads (server default)"
    )
    parser.add_argument(
        "--asr-workers", type=int, default=None, help="Whisper decodes at once (server default)"
    )
    parser.add_argument(
        "--asr-busy-tick-s", type=float, default=None, help="ASR interval when saturated"
    )
    parser.add_argument("--asr-tick-s", type=float, default=None, help="ASR decode interval")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        server = _start_server(args, port_file)
        try:
            clock_wait = 0.0
            while not port_file.exists() or not port_file.read_text():
                if server.poll() is not None:
                    err = server.stderr.read().decode() if server.stderr else ""
                    print(f"server exited: {err}", file=sys.stderr)
                    return 1
                asyncio.run(LoopClock().sleep(100 * NS_PER_MS))
                clock_wait += 0.1
                if clock_wait > 300:
                    print("server did not start", file=sys.stderr)
                    return 1
            url = f"ws://127.0.0.1:{int(port_file.read_text())}/ws"
            load0 = Path("/proc/loadavg").read_text().split()[0]
            ticks0 = _cpu_ticks(server.pid)
            own0 = os.times()
            wall0 = os.times().elapsed
            results = asyncio.run(_run(args, url))
            wall = os.times().elapsed - wall0
            server_cpu = (_cpu_ticks(server.pid) - ticks0) / os.sysconf("SC_CLK_TCK")
            own = os.times()
            client_cpu = (own.user + own.system) - (own0.user + own0.system)
            load1 = Path("/proc/loadavg").read_text().split()[0]
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(10)
            if server.poll() is None:
                server.kill()

    rows = []
    for i, r in enumerate(results):
        commit_s = [c / NS_PER_S for c in r.commit_ns]
        rows.append(
            [
                i,
                "+".join(f[:18] for f in r.files),
                r.audio_s,
                r.words,
                pctl(commit_s, 50),
                pctl(commit_s, 90),
                pctl([e / NS_PER_MS for e in r.eos_ns], 50),
                r.answers,
                r.dropped_s,
                r.errors,
                r.whisper_ms,
                r.whisper_wait_ms,
                pctl(r.transport_ms, 50),
            ]
        )
    print_table(
        f"sessions: {args.sessions} client(s) at real-time pace, one server "
        f"(assistant, lm={args.lm}); {os.cpu_count()} CPUs shared with other work, "
        f"load average {load0} → {load1}",
        [
            "session",
            "files",
            "audio_s",
            "words",
            "commit_p50_s",
            "commit_p90_s",
            "eos_tok_p50_ms",
            "answers",
            "dropped_s",
            "errors",
            "asr_call_p50_ms",
            "asr_wait_p50_ms",
            "ws_out_p50_ms",
        ],
        rows,
    )
    print_table(
        "CPU over the run",
        ["wall_s", "server_cpu_s", "server_cores", "client_cpu_s"],
        [[wall, server_cpu, server_cpu / wall if wall else 0.0, client_cpu]],
    )
    for i, r in enumerate(results):
        print(f"session {i}: {r.transcript}")
    commit_p90 = max(
        (pctl([c / NS_PER_S for c in r.commit_ns], 90) for r in results), default=float("nan")
    )
    eos_all = [e / NS_PER_MS for r in results for e in r.eos_ns]
    eos_p50 = pctl(eos_all, 50)
    dropped = sum(r.dropped_s for r in results)
    eos_text = "nan" if eos_p50 != eos_p50 else str(round(eos_p50))
    print(
        f"sessions: n={args.sessions} commit_p90_s={commit_p90:.3f} "
        f"eos_to_first_token_p50_ms={eos_text} dropped_audio_s={dropped:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
