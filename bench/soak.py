"""Soak: N real-time sessions against one ``streamkit serve`` for ``--minutes``: is memory flat?

The server runs as a subprocess (``streamkit serve``, the ``assistant`` pipeline: streaming
ASR + the bundled language model). Each of ``--sessions`` clients keeps ONE session open for
the whole run and loops over real utterances from ``--data`` at real-time pace (20 ms PCM16
frames), each followed by ``--gap-s`` of silence, then streams silence until the utterance's
last ``transcript.final`` arrives (at most ``--final-timeout-s``; else it counts as lost).
The server's RSS is read from ``/proc/PID/status`` every ``--sample-s`` seconds.

- ``rss_growth_pct``: RSS growth over the measured window, 100 × (mean RSS of its last
  minute / mean RSS of its first minute − 1). The window is the last 20 minutes of the run,
  or, for runs shorter than 25 minutes, everything after the first third (warm-up: models
  paged in, per-session histograms filling to their caps, allocator arenas growing).
- ``lost_finals``: utterances the server started (``speech.started`` or a partial) whose
  last ``transcript.final`` never came, not even after the run (each client streams silence
  for up to ``--final-timeout-s`` at the end); ``late`` in the table: finals that took longer
  than that (a loaded machine). ``errors``: ``error`` events + client failures.

``--inspect`` runs the server in-process under ``bench/_soak_server.py``, which also samples
glibc's heap (``mallinfo2``: in use vs free kept in arenas vs mmapped) and, with
``--tracemalloc``, the Python heap and its top-growing lines: Python vs native growth.

Last line: ``soak: minutes=<n> sessions=<n> rss_growth_pct=<x> lost_finals=<n> errors=<n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import print_table  # noqa: E402
from bench.sessions import FILES  # noqa: E402
from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock, Nanos  # noqa: E402
from streamkit.core.events import (  # noqa: E402
    ErrorEvent,
    ResponseDone,
    SpeechStarted,
    TranscriptFinal,
    TranscriptPartial,
)
from streamkit.sources.media_io import load_audio  # noqa: E402
from streamkit.transport.client import Client, Received  # noqa: E402

MB = 1024 * 1024


@dataclass
class SessionStats:
    utterances: int = 0
    finals: int = 0
    late: int = 0
    answers: int = 0
    errors: int = 0
    failure: str = "-"
    heard: set[str] = field(default_factory=set)
    final: set[str] = field(default_factory=set)

    @property
    def lost(self) -> int:
        """Utterances the server started (speech, partials) but never finalised."""
        return len(self.heard - self.final)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _session(
    url: str, audios: list[np.ndarray], until: Nanos, args: argparse.Namespace
) -> SessionStats:
    stats = SessionStats()
    clock = LoopClock()

    def seen(item: Received) -> None:
        event = item.event
        if isinstance(event, SpeechStarted | TranscriptPartial | TranscriptFinal):
            stats.heard.add(event.utterance_id)
        if isinstance(event, TranscriptFinal) and event.is_last:
            stats.finals += 1
            stats.final.add(event.utterance_id)
        elif isinstance(event, ResponseDone):
            stats.answers += 1
        elif isinstance(item.event, ErrorEvent):
            stats.errors += 1

    silence = np.zeros(int(args.gap_s * 16000), np.float32)
    tick = np.zeros(8000, np.float32)
    try:
        async with Client.connect(url, on_event=seen) as client:
            client.received = type(client.received)(maxlen=1000)  # a long run: keep few
            await client.update(pipeline="assistant", metrics_interval_ms=5000)
            await client.stream_audio(np.zeros(16000, np.float32))
            index = 0
            while clock.now() < until:
                before = stats.finals
                await client.stream_audio(audios[index % len(audios)])
                await client.stream_audio(silence)
                index += 1
                stats.utterances += 1
                waited = 0.0
                while stats.finals <= before and waited < args.final_timeout_s:
                    await client.stream_audio(tick)
                    waited += 0.5
                if stats.finals <= before:
                    stats.late += 1
            waited = 0.0  # the end: every utterance the server heard gets its final
            while stats.heard - stats.final and waited < args.final_timeout_s:
                await client.stream_audio(tick)
                waited += 0.5
    except Exception as error:  # a dead session is a finding, not a crash of the bench
        while isinstance(error, ExceptionGroup):
            error = error.exceptions[0]
        stats.failure = f"{type(error).__name__}: {error}"[:120]
        stats.errors += 1
    return stats


async def _sampler(pid: int, every_s: float, out: list[tuple[float, int]]) -> None:
    clock = LoopClock()
    start = clock.now()
    while True:
        with contextlib.suppress(OSError):
            out.append(((clock.now() - start) / NS_PER_S, _rss(pid)))
        await clock.sleep(round(every_s * NS_PER_S))


async def _run(
    args: argparse.Namespace, url: str, pid: int, samples: list[tuple[float, int]]
) -> list[SessionStats]:
    data = Path(args.data)
    audios = [load_audio(data / name) for name in FILES]
    clock = LoopClock()
    until = clock.now() + round(args.minutes * 60 * NS_PER_S)
    async with asyncio.TaskGroup() as group:
        sampler = group.create_task(_sampler(pid, args.sample_s, samples))
        tasks = []
        for i in range(args.sessions):
            mine = audios[i % len(audios) :] + audios[: i % len(audios)]
            tasks.append(group.create_task(_session(url, mine, until, args)))
            await clock.sleep(300 * NS_PER_MS)
        await asyncio.wait(tasks)
        sampler.cancel()
    return [t.result() for t in tasks]


def _window(total_s: float) -> float:
    """Start (s) of the measured window: the last 20 min, or after the first third."""
    if total_s >= 25 * 60:
        return total_s - 20 * 60
    return total_s / 3


def _mean_between(samples: list[tuple[float, int]], lo: float, hi: float) -> float:
    values = [rss for t, rss in samples if lo <= t <= hi]
    return float(np.mean(values)) if values else float("nan")


def growth_pct(samples: list[tuple[float, int]]) -> float:
    """RSS growth over the measured window (see the module docstring), percent."""
    if len(samples) < 2:
        return float("nan")
    total = samples[-1][0]
    start = _window(total)
    first = _mean_between(samples, start, start + 60)
    last = _mean_between(samples, total - 60, total)
    return 100.0 * (last / first - 1.0)


def _start_server(
    args: argparse.Namespace, port_file: Path, probe: Path
) -> subprocess.Popen[bytes]:
    serve = ["--port", "0", "--port-file", str(port_file), "--pipeline", "assistant"]
    serve += ["--lm", args.lm, "--max-sessions", str(args.sessions + 2)]
    env = dict(os.environ)
    if args.inspect:
        cmd = [sys.executable, "-m", "bench._soak_server", str(probe), "60", "--", *serve]
        if args.tracemalloc:
            env["PYTHONTRACEMALLOC"] = "1"
    else:
        cmd = [sys.executable, "-m", "streamkit", "serve", *serve]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait_for_port(server: subprocess.Popen[bytes], port_file: Path) -> int | None:
    for _ in range(3000):
        if port_file.exists() and port_file.read_text():
            return int(port_file.read_text())
        if server.poll() is not None:
            err = server.stderr.read().decode() if server.stderr else ""
            print(f"server exited: {err}", file=sys.stderr)
            return None
        asyncio.run(LoopClock().sleep(100 * NS_PER_MS))
    print("server did not start", file=sys.stderr)
    return None


def _report_inspect(probe: Path, total_s: float) -> None:
    if not probe.exists():
        return
    records = [json.loads(line) for line in probe.read_text().splitlines() if line]
    if len(records) < 2:
        return
    start = max(0, min(len(records) - 2, int(_window(total_s) / 60)))
    keys = ["rss", "malloc_in_use", "malloc_free", "malloc_mmapped", "python"]
    rows = []
    for name in keys:
        if name in records[start]:
            a, b = records[start][name] / MB, records[-1][name] / MB
            rows.append([name, a, b, b - a])
    print_table(
        f"server memory (MB) from inside, minute {start + 1} → {len(records)}",
        ["what", "window_start", "end", "growth"],
        rows,
    )
    for line in records[-1].get("top", []):
        print("  " + line.replace("\n", " "))
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--data", default=str(ROOT / "tests" / "data"))
    parser.add_argument("--gap-s", type=float, default=1.5, help="silence after each utterance")
    parser.add_argument("--final-timeout-s", type=float, default=20.0)
    parser.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period")
    parser.add_argument("--lm", default="auto")
    parser.add_argument("--inspect", action="store_true", help="sample malloc from inside")
    parser.add_argument("--tracemalloc", action="store_true", help="with --inspect: Python heap")
    args = parser.parse_args()

    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        port_file, probe = Path(tmp) / "port", Path(tmp) / "probe.jsonl"
        server = _start_server(args, port_file, probe)
        try:
            port = _wait_for_port(server, port_file)
            if port is None:
                return 1
            load0 = Path("/proc/loadavg").read_text().split()[0]
            results = asyncio.run(_run(args, f"ws://127.0.0.1:{port}/ws", server.pid, samples))
            load1 = Path("/proc/loadavg").read_text().split()[0]
            server_alive = server.poll() is None
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(20)
            if server.poll() is None:
                server.kill()
        total = samples[-1][0] if samples else 0.0
        step = max(1, len(samples) // 12)
        timeline = [[round(t / 60, 1), rss / MB] for t, rss in samples[::step]]
        if samples and timeline[-1][0] != round(total / 60, 1):
            timeline.append([round(total / 60, 1), samples[-1][1] / MB])
        print_table(
            f"soak: server RSS over {total / 60:.1f} min, {args.sessions} real-time sessions "
            f"(assistant, lm={args.lm}); {os.cpu_count()} CPUs shared with other work, "
            f"load average {load0} → {load1}; window from minute {_window(total) / 60:.1f}",
            ["minute", "rss_mb"],
            timeline,
        )
        _report_inspect(probe, total)
    rows = [
        [i, r.utterances, len(r.heard), r.finals, r.late, r.lost, r.answers, r.errors, r.failure]
        for i, r in enumerate(results)
    ]
    print_table(
        f"per session (late: no final within {args.final_timeout_s:.0f} s; lost: never)",
        ["session", "sent", "heard", "finals", "late", "lost", "answers", "errors", "failure"],
        rows,
    )
    errors = sum(r.errors for r in results) + (0 if server_alive else 1)
    lost = sum(r.lost for r in results)
    print(
        f"soak: minutes={round(total / 60)} sessions={args.sessions} "
        f"rss_growth_pct={growth_pct(samples):.1f} lost_finals={lost} errors={errors}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
