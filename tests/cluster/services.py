"""Real services on loopback for the cluster test and bench/cluster.py: Redis, the llama.cpp
OpenAI-compatible server on the bundled GGUF, ``streamkit serve`` workers and HAProxy
(with ``deploy/haproxy.cfg`` itself). Each runs as a subprocess logging to a file; nothing is
mocked. Blocking helpers (tests and benches only)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"

CLIPS = [
    "speech/utterances/pocketsphinx_goforward/goforward.wav",
    "speech/utterances/deepspeech/new-home-in-the-stars-16k.wav",
    "speech/utterances/librivox_sense_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav",
    "speech/utterances/librivox_sense_sensibility/sense_and_sensibility_01_austen_64kb-0930.wav",
    "speech/utterances/ljspeech/LJ001-0002.wav",
    "speech/utterances/cmu_arctic/arctic_a0010_pyroomacoustics.wav",
]
"""Short single-breath utterances from tests/data (each one VAD utterance)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_tools() -> list[str]:
    return [tool for tool in ("haproxy", "redis-server") if shutil.which(tool) is None]


def _wait(
    check: object, proc: subprocess.Popen[bytes], log: Path, what: str, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}): {log.read_text()[-2000:]}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout_s} s: {log.read_text()[-2000:]}")


def http_json(url: str, timeout_s: float = 2.0) -> tuple[int, dict[str, object]]:
    """GET ``url``; (status, JSON body) — (0, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {}
    except (OSError, ValueError):
        return 0, {}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _spawn(
    name: str, cmd: list[str], port: int, workdir: Path, env: dict[str, str] | None = None
) -> Service:
    log = workdir / f"{name}.log"
    out = log.open("wb")  # a file, not a pipe: a full pipe would stall the process
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    out.close()
    return Service(name, proc, port, log)


def start_redis(workdir: Path) -> Service:
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    service = _spawn("redis", cmd, port, workdir)
    _wait(lambda: _listening(port), service.proc, service.log, "redis-server", 10)
    return service


def start_lm_server(workdir: Path, threads: int = 1) -> Service:
    from streamkit.lm.models import bundled_model_path

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path()),
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads),
           "--n_ctx", "2048",
           # shared by every worker: queue requests (its default interrupts the running one)
           "--interrupt_requests", "False", "--verbose", "False"]  # fmt: skip
    service = _spawn("lm", cmd, port, workdir)
    ready = lambda: http_json(f"http://127.0.0.1:{port}/v1/models")[0] == 200  # noqa: E731
    _wait(ready, service.proc, service.log, "llama_cpp.server", 120)
    return service


def start_worker(
    name: str, workdir: Path, lm_url: str, store: str, max_sessions: int, *extra: str
) -> Service:
    port = free_port()
    cmd = [sys.executable, "-m", "streamkit", "serve", "--port", str(port),
           "--pipeline", "assistant", "--lm", "http", "--lm-url", lm_url,
           "--store", store, "--max-sessions", str(max_sessions),
           "--asr-workers", "1", "--asr-threads", "1", *extra]  # fmt: skip
    return _spawn(name, cmd, port, workdir)


def wait_ready(service: Service, timeout_s: float = 120) -> None:
    url = f"http://127.0.0.1:{service.port}/readyz"
    _wait(lambda: http_json(url)[0] == 200, service.proc, service.log, service.name, timeout_s)


def start_haproxy(workdir: Path, workers: list[Service]) -> Service:
    port = free_port()
    env = dict(os.environ, STREAMKIT_BIND=f"127.0.0.1:{port}")
    for index, worker in enumerate(workers, 1):
        env[f"STREAMKIT_WORKER{index}"] = f"127.0.0.1:{worker.port}"
    service = _spawn("haproxy", ["haproxy", "-db", "-f", str(HAPROXY_CFG)], port, workdir, env)
    _wait(lambda: _listening(port), service.proc, service.log, "haproxy", 10)
    return service


@dataclass
class Cluster:
    """HAProxy + workers + one LM server + Redis, all real, on loopback."""

    workdir: Path
    redis: Service
    lm: Service
    workers: list[Service]
    haproxy: Service
    by_name: dict[str, Service] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.haproxy.port}/ws"

    @property
    def store_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"

    def readyz(self, worker: Service) -> tuple[int, dict[str, object]]:
        return http_json(f"http://127.0.0.1:{worker.port}/readyz")

    def alive(self) -> list[Service]:
        return [w for w in self.workers if w.alive()]

    def stop(self) -> None:
        for service in (self.haproxy, *self.workers, self.lm, self.redis):
            service.stop(signal.SIGKILL if service in self.workers else signal.SIGTERM, 10)


def start_cluster(workdir: Path, workers: int = 3, max_sessions: int = 3, *extra: str) -> Cluster:
    """Start everything and wait until every worker is ready (models loaded)."""
    redis = start_redis(workdir)
    lm = start_lm_server(workdir)
    store = f"redis://127.0.0.1:{redis.port}/0"
    lm_url = f"http://127.0.0.1:{lm.port}/v1"
    procs = [
        start_worker(f"w{i}", workdir, lm_url, store, max_sessions, *extra)
        for i in range(1, workers + 1)
    ]
    for proc in procs:
        wait_ready(proc)
    haproxy = start_haproxy(workdir, procs)
    cluster = Cluster(workdir, redis, lm, procs, haproxy, {p.name: p for p in procs})
    deadline = time.monotonic() + 10  # until HAProxy's first checks passed
    while time.monotonic() < deadline and not all(cluster.readyz(w)[0] == 200 for w in procs):
        time.sleep(0.1)
    time.sleep(1.0)
    return cluster


# -- sessions with real speech (shared by the test and the bench) -----------------------------


def utterances(client: Any) -> dict[tuple[int, str], tuple[int, int, int]]:
    """(connection, utterance id) → (last finals, answers, answers cut short) in a client's
    log. An answer cut short (``cancelled``: barge-in, a speculative answer superseded) is
    not an answer: its words go into the next one."""
    from streamkit.core.events import ResponseDone, TranscriptFinal

    out: dict[tuple[int, str], tuple[int, int, int]] = {}
    for item in client.received:
        event = item.event
        key = (item.conn, getattr(event, "utterance_id", ""))
        finals, answers, cut = out.get(key, (0, 0, 0))
        if isinstance(event, TranscriptFinal) and event.is_last:
            out[key] = (finals + 1, answers, cut)
        elif isinstance(event, ResponseDone):
            out[key] = (finals, answers + (not event.cancelled), cut + event.cancelled)
    return out


def answered(client: Any) -> int:
    """Utterances whose turn is over: answered, or answered and cut short (carried on) —
    counted only once the latest answer is a whole one."""
    from streamkit.core.events import ResponseDone

    dones = [r.event for r in client.received if isinstance(r.event, ResponseDone)]
    if not dones or dones[-1].cancelled:
        return sum(1 for _, a, _ in utterances(client).values() if a)
    return sum(1 for _, a, c in utterances(client).values() if a or c)


def exactly_once(groups: dict[tuple[int, str], tuple[int, int, int]]) -> bool:
    """Every utterance: one final, at most one answer, and an answer or one cut short whose
    words a later answer carried (the last utterance is answered)."""
    if not groups:
        return False
    last = list(groups.values())[-1]
    return last[1] == 1 and all(f == 1 and a <= 1 and a + c >= 1 for f, a, c in groups.values())


async def speak(client: Any, audio: list[Any], gap_s: float, timeout_s: float = 90) -> None:
    """Stream the clips at real-time pace with ``gap_s`` of silence after each, then silence
    until every utterance is answered (a live microphone never stops)."""
    import numpy as np

    target = answered(client) + len(audio)
    await client.update(pipeline="assistant", metrics_interval_ms=0)
    await client.stream_audio(np.zeros(8000, np.float32))
    silence = np.zeros(int(gap_s * 16000), np.float32)
    for clip in audio:
        await client.stream_audio(clip)
        await client.stream_audio(silence)
    tick = np.zeros(8000, np.float32)
    waited = 0.0
    while answered(client) < target and waited < timeout_s:
        await client.stream_audio(tick)
        waited += 0.5
