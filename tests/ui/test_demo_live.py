"""`streamkit demo` and `streamkit record` on a live microphone: a private PulseAudio server
whose null-sink monitor is the default input, fed real speech with paplay."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from streamkit.record.mcap import read_session

_spec = importlib.util.spec_from_file_location(
    "_pulse_fixtures", Path(__file__).resolve().parents[1] / "sources" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
_pulse = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pulse)
pulse_server = _pulse.pulse_server  # the capture tests' PulseAudio fixture


def _play_after(delay: float, wav: Path, env: dict[str, str]) -> threading.Thread:
    def play() -> None:
        threading.Event().wait(delay)
        subprocess.run(["paplay", str(wav)], env=env, check=True, timeout=30)

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


@pytest.mark.audio_server
@pytest.mark.slow
def test_demo_runs_live_on_the_microphone(pulse_server: dict[str, str], data_dir: Path,
                                          tmp_path: Path) -> None:
    env = {**os.environ, **pulse_server}
    env.pop("DISPLAY", None)
    speech = data_dir / "speech/utterances/jfk/jfk.wav"
    player = _play_after(2.5, speech, env)
    done = subprocess.run(
        [sys.executable, "-m", "streamkit", "demo", "--live", "yes", "--window", "no",
         "--pipeline", "vad", "--max-seconds", "10"],
        env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path,
    )
    player.join(timeout=30)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "live:" in out
    assert "vad-0" in out  # the played speech was heard through the microphone
    assert "e2e live.audio" in out  # capture → pipeline latency of the live source


@pytest.mark.audio_server
@pytest.mark.slow
def test_record_from_the_microphone(pulse_server: dict[str, str], data_dir: Path,
                                    tmp_path: Path) -> None:
    env = {**os.environ, **pulse_server}
    out = tmp_path / "mic.mcap"
    player = _play_after(2.0, data_dir / "speech/utterances/jfk/jfk.wav", env)
    done = subprocess.run(
        [sys.executable, "-m", "streamkit", "record", str(out), "--seconds", "6"],
        env=env, capture_output=True, text=True, timeout=90,
    )
    player.join(timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    session = read_session(out)
    assert session.topics()[0] == "/audio"
    samples = np.concatenate([p.payload.samples for p in session.packets("/audio")])
    assert len(samples) / 16_000 > 4.0
    assert float(np.max(np.abs(samples))) > 0.1  # JFK, heard through the microphone
