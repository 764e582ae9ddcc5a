"""``streamkit serve`` as a real process on loopback, for the command tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["serve_process"]


@contextlib.contextmanager
def serve_process(workdir: Path, *args: str, wait_s: float = 120) -> Iterator[int]:
    """Start ``streamkit serve --port 0 ARGS``; yield its port once it listens; stop it."""
    port_file = workdir / "port"
    server = subprocess.Popen(
        [sys.executable, "-m", "streamkit", "serve", "--port", "0", "--port-file",
         str(port_file), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(round(wait_s * 10)):
            if port_file.exists() and port_file.read_text():
                break
            try:
                server.wait(0.1)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"serve exited: {server.stderr.read() if server.stderr else ''}")
        yield int(port_file.read_text())
    finally:
        server.terminate()
        server.wait(20)
