"""N real-time sessions through HAProxy over 3 workers sharing one LM server: how many hold?

Everything is real and on loopback (the services of ``tests/cluster/services.py``): Redis,
llama-cpp-python's OpenAI-compatible server on the bundled GGUF (every worker's ``--lm http``),
3 ``streamkit serve`` workers (Whisper tiny.en each, ``--store redis://…``) and HAProxy with
``deploy/haproxy.cfg`` (leastconn, ``/readyz`` checks). For each N in ``--sessions`` (default
2, 4, 8, 12), N clients connect through HAProxy at once (staggered ``--stagger-ms``) and each
streams two real utterances from tests/data at real-time pace with ``--gap-s`` of silence
after each. Reported per N:

- commit latency (arrival of a word's ``transcript.final`` − the word's end), p50/p90 over all
  sessions' words;
- end of speech → first answer token, p50/p90 over all answers;
- failed sessions: an error, a lost session, or an utterance without its final or answer;
- how HAProxy spread the sessions (``X-Streamkit-Worker``).

The baseline in the same run is the first row: 2 sessions straight to one worker, no
balancer in between (the table title gives the machine's load average: the numbers are only
comparable within one run). ``max_sessions_p90_ok`` is the largest N
whose commit p90 ≤ 2.0 s with no failed session. Then a failover run at that N (at least 2):
one worker is killed (``kill -9``) while its first client is mid-utterance; its clients
resume on the others (Redis + the client's replay buffer); ``failover_lost_finals`` counts
utterances that never got exactly one final transcript (lost or duplicated).

``--spread`` also compares, with the model-free ``echo`` pipeline, how 12 sessions opened one
after another spread over 3 workers behind HAProxy (leastconn) and over ``serve --workers 3``
(SO_REUSEPORT, counted per process with ``ss``).

Last line: ``cluster: max_sessions_p90_ok=<n> commit_p90_s_at_max=<x>
eos_to_first_token_p50_ms_at_max=<n> failover_lost_finals=<n>``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from websockets.exceptions import InvalidStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import pctl, print_table  # noqa: E402
from streamkit.core.clock import NS_PER_MS, LoopClock  # noqa: E402
from streamkit.core.events import SpeechStarted  # noqa: E402
from streamkit.sources.media_io import load_audio  # noqa: E402
from streamkit.transport.client import Client  # noqa: E402
from tests.cluster.services import (  # noqa: E402
    CLIPS,
    Cluster,
    free_port,
    http_json,
    missing_tools,
    speak,
    start_cluster,
    start_haproxy,
    start_worker,
    utterances,
    wait_ready,
)


@dataclass
class Run:
    n: int
    commit_ns: list[int] = field(default_factory=list)
    eos_ns: list[int] = field(default_factory=list)
    failed: int = 0
    """Sessions that could not start, were lost, or lost an utterance's final."""
    lost_finals: int = 0
    answers: int = 0
    expected: int = 0
    workers: Counter[str] = field(default_factory=Counter)
    resumed: int = 0


async def _open(stack: contextlib.AsyncExitStack, url: str) -> Client:
    """Connect through the balancer; a 503 (every worker busy or out of rotation) is retried
    for up to 20 s, as a real client backs off."""
    for _ in range(40):
        try:
            return await stack.enter_async_context(Client.connect(url, resume=True))
        except InvalidStatus:
            await LoopClock().sleep(500 * NS_PER_MS)
    return await stack.enter_async_context(Client.connect(url, resume=True))


def _worker(client: Client) -> str:
    response = client.ws.response
    return str(response.headers.get("X-Streamkit-Worker", "?")) if response else "?"


async def _session(
    url: str, audio: list[npt.NDArray[np.float32]], gap_s: float, run: Run, first: list[Client]
) -> None:
    run.expected += len(audio)
    try:
        async with contextlib.AsyncExitStack() as stack:
            client = await _open(stack, url)
            run.workers[_worker(client)] += 1
            first.append(client)
            # the shared LM answers one request at a time: allow it time for every answer
            budget = 30 + 6 * run.n
            with contextlib.suppress(TimeoutError):  # a session stuck past it counts failed
                async with asyncio.timeout(budget + 60):
                    await speak(client, audio, gap_s, timeout_s=budget)
            groups = utterances(client)
            finals = sum(1 for f, _, _ in groups.values() if f == 1)
            duplicated = sum(1 for f, a, _ in groups.values() if f > 1 or a > 1)
            run.lost_finals += max(0, len(audio) - finals) + duplicated
            run.answers += sum(1 for _, a, _ in groups.values() if a == 1)
            if finals < len(audio) or duplicated or client.closed_code is not None:
                run.failed += 1
            run.commit_ns.extend(client.latency.commit)
            run.eos_ns.extend(client.latency.eos_to_first_token)
            if client.resumer is not None and client.resumer.connection:
                run.resumed += 1
    except Exception as error:  # a session that could not even start
        print(f"  session failed: {error!r}", file=sys.stderr)
        run.failed += 1
        run.lost_finals += len(audio)


async def _run(
    cluster: Cluster, n: int, clips: list[npt.NDArray[np.float32]], args: argparse.Namespace,
    kill: bool = False, url: str | None = None,
) -> Run:  # fmt: skip
    run = Run(n)
    target = url or cluster.url
    clients: list[Client] = []

    async def killer() -> None:
        while not clients:
            await LoopClock().sleep(50 * NS_PER_MS)
        victim_client = clients[0]
        victim = cluster.by_name[_worker(victim_client)]

        def mid_turn() -> bool:
            return any(isinstance(r.event, SpeechStarted) for r in victim_client.received)

        with contextlib.suppress(TimeoutError):
            await victim_client.wait_until(mid_turn, 60)
        await LoopClock().sleep(800 * NS_PER_MS)
        os.kill(victim.proc.pid, signal.SIGKILL)
        print(f"  killed {victim.name} mid-turn", file=sys.stderr)

    async with asyncio.TaskGroup() as group:
        if kill:
            group.create_task(killer())
        for i in range(n):
            audio = [clips[(2 * i) % len(clips)], clips[(2 * i + 1) % len(clips)]]
            group.create_task(_session(target, audio, args.gap_s, run, clients))
            await LoopClock().sleep(args.stagger_ms * NS_PER_MS)
    return run


def _ms(values: list[int], q: float) -> object:
    value = pctl(values, q)
    return "nan" if math.isnan(value) else round(value / 1e6)


def _row(run: Run, label: str) -> list[object]:
    spread = " ".join(f"{w}:{c}" for w, c in sorted(run.workers.items()))
    return [
        label,
        run.n,
        pctl(run.commit_ns, 50) / 1e9,
        pctl(run.commit_ns, 90) / 1e9,
        _ms(run.eos_ns, 50),
        _ms(run.eos_ns, 90),
        f"{run.answers}/{run.expected}",
        run.failed,
        run.lost_finals,
        run.resumed,
        spread,
    ]


HEADERS = [
    "run", "n", "commit_p50_s", "commit_p90_s", "eos_tok_p50_ms", "eos_tok_p90_ms",
    "answers", "failed", "lost_finals", "resumed", "spread",
]  # fmt: skip


# -- spread: HAProxy leastconn vs SO_REUSEPORT -------------------------------------------------


def _reuseport_spread(workdir: Path, sessions: int) -> Counter[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "streamkit", "serve", "--no-models", "--pipeline", "echo",
           "--port", str(port), "--workers", "3", "--max-sessions", "64"]  # fmt: skip
    log = (workdir / "reuseport.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        for _ in range(200):
            if http_json(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                break
            time.sleep(0.1)
        return asyncio.run(_hold(f"ws://127.0.0.1:{port}/ws", sessions, port))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log.close()


async def _hold(url: str, sessions: int, port: int | None) -> Counter[str]:
    """Open ``sessions`` one after another, keep them open, count where they landed."""
    seen: Counter[str] = Counter()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client.connect(url)) for _ in range(sessions)]
        if port is None:
            seen.update(_worker(c) for c in clients)
        else:  # SO_REUSEPORT: which process owns each accepted socket
            out = await asyncio.to_thread(
                subprocess.run,
                ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            seen.update(f"pid{m}" for m in re.findall(r"pid=(\d+)", out.stdout))
    return seen


def _haproxy_spread(workdir: Path, sessions: int) -> Counter[str]:
    workers = [start_worker(f"w{i}", workdir, "http://127.0.0.1:9/v1", "memory://", 64,
                            "--no-models", "--pipeline", "echo") for i in (1, 2, 3)]  # fmt: skip
    try:
        for worker in workers:
            wait_ready(worker, 60)
        haproxy = start_haproxy(workdir, workers)
        try:
            time.sleep(1.5)  # the first health checks
            return asyncio.run(_hold(f"ws://127.0.0.1:{haproxy.port}/ws", sessions, None))
        finally:
            haproxy.stop()
    finally:
        for worker in workers:
            worker.stop()


def _imbalance(counts: Counter[str], sessions: int, workers: int = 3) -> int:
    """max − min sessions per worker (0 = perfectly even)."""
    values = list(counts.values()) + [0] * (workers - len(counts))
    return max(values) - min(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="2,4,8,12", help="comma-separated N values")
    parser.add_argument("--data", default=str(ROOT / "tests" / "data"))
    parser.add_argument("--gap-s", type=float, default=3.0, help="silence after each utterance")
    parser.add_argument("--stagger-ms", type=int, default=300)
    parser.add_argument("--max-sessions", type=int, default=6, help="per worker")
    parser.add_argument("--spread", action="store_true", help="also HAProxy vs SO_REUSEPORT")
    parser.add_argument("--no-failover", action="store_true")
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        print(f"bench/cluster: needs {missing} (scripts/system-deps.sh dev)", file=sys.stderr)
        return 2
    data = Path(args.data)
    load_before = os.getloadavg()[0]
    clips = [load_audio(data / f) for f in CLIPS]
    levels = [int(x) for x in args.sessions.split(",") if x]
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        workdir = Path(tmp)
        if args.spread:
            opened = 12
            rows = []
            for label, counts in (
                ("haproxy leastconn", _haproxy_spread(workdir, opened)),
                ("serve --workers 3 (SO_REUSEPORT)", _reuseport_spread(workdir, opened)),
            ):
                per = " ".join(str(c) for c in sorted(counts.values(), reverse=True))
                rows.append([label, opened, per, _imbalance(counts, opened)])
            print_table(
                "spread of 12 sessions opened one after another over 3 workers (echo pipeline)",
                ["front", "sessions", "per_worker", "max_minus_min"],
                rows,
            )
        cluster = start_cluster(workdir, 3, args.max_sessions)
        runs: list[Run] = []
        try:
            # baseline, same run: 2 sessions straight to one worker (no balancer in between)
            direct = f"ws://127.0.0.1:{cluster.workers[0].port}/ws"
            baseline = asyncio.run(_run(cluster, 2, clips, args, url=direct))
            for n in levels:
                run = asyncio.run(_run(cluster, n, clips, args))
                runs.append(run)
                print(f"  n={n} done: failed={run.failed}", file=sys.stderr)
            ok = [r for r in runs if r.failed == 0 and pctl(r.commit_ns, 90) <= 2.0e9]
            best = max(ok, key=lambda r: r.n) if ok else None
            failover: Run | None = None
            if not args.no_failover:
                failover = asyncio.run(
                    _run(cluster, max(2, best.n if best else 2), clips, args, kill=True)
                )
        finally:
            cluster.stop()
    rows = [_row(baseline, "direct w1"), *(_row(r, "haproxy") for r in runs)]
    if failover is not None:
        rows.append(_row(failover, "kill -9"))
    print_table(
        "N real-time sessions through HAProxy, 3 workers (Whisper tiny.en), one llama.cpp "
        f"server, Redis; gap {args.gap_s} s, max {args.max_sessions} sessions/worker; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
        HEADERS,
        rows,
    )
    lost = failover.lost_finals if failover is not None else -1
    if best is None:
        print(f"cluster: max_sessions_p90_ok=0 commit_p90_s_at_max=nan "
              f"eos_to_first_token_p50_ms_at_max=0 failover_lost_finals={lost}")  # fmt: skip
        return 0
    print(
        f"cluster: max_sessions_p90_ok={best.n} "
        f"commit_p90_s_at_max={pctl(best.commit_ns, 90) / 1e9:.2f} "
        f"eos_to_first_token_p50_ms_at_max={_ms(best.eos_ns, 50)} "
        f"failover_lost_finals={lost}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
