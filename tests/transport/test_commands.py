"""The ``streamkit serve`` and ``streamkit client`` commands as real processes on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.transport._serve import serve_process

pytestmark = pytest.mark.timeout(120)


def test_serve_refuses_a_public_bind_without_a_token() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamkit", "serve", "--host", "0.0.0.0", "--no-models"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "token" in done.stderr


def test_client_streams_a_file_to_serve_and_prints_the_answer(
    tmp_path: Path, data_dir: Path
) -> None:
    with serve_process(tmp_path, "--no-models", wait_s=60) as port:
        wav = data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamkit",
                "client",
                "--url",
                f"ws://127.0.0.1:{port}/ws",
                "--file",
                str(wav),
                "--pipeline",
                "echo",
                "--no-realtime",
                "--tail-s",
                "0.5",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "you: heard 3.29 s" in done.stdout  # 2.79 s of speech + 0.5 s of silence
        assert "assistant: t0 t1" in done.stdout
        assert "t19" in done.stdout
        assert "latency per turn" in done.stdout
        # a file with a video track: its frames go too (JPEG at container times)
        clip = data_dir / "video/imageio_realshort.mp4"
        done = subprocess.run(
            [sys.executable, "-m", "streamkit", "client", "--url", f"ws://127.0.0.1:{port}/ws",
             "--file", str(clip), "--pipeline", "echo", "--json", "--tail-s", "0.2"],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        events = [json.loads(line).get("event", {}) for line in done.stdout.splitlines()]
        observations = [e for e in events if e.get("type") == "vision.observation"]
        assert observations, done.stdout  # the echo pipeline saw the file's frames
        assert observations[0]["width"] > 0
