"""A private PulseAudio daemon with a null sink, for testing the real microphone path.

The daemon runs in user mode with its own runtime directory and socket; the null sink's
monitor is the default source, so audio played into the sink (``paplay``) is what a
"microphone" opened on PortAudio's ALSA ``pulse`` device captures. Skips (with the reason)
only when PulseAudio or paplay is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

PA_CONFIG = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name=sk_null rate=48000 channels=1
set-default-sink sk_null
set-default-source sk_null.monitor
"""


@pytest.fixture
def pulse_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for tool in ("pulseaudio", "paplay", "pactl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian: apt install pulseaudio pulseaudio-utils)")
    run = tmp_path / "pulse"
    run.mkdir()
    socket = run / "native"
    config = tmp_path / "pa.conf"
    config.write_text(PA_CONFIG.format(socket=socket))
    env = {
        "XDG_RUNTIME_DIR": str(run),
        "PULSE_RUNTIME_PATH": str(run),
        "HOME": str(tmp_path),
        "PULSE_SERVER": f"unix:{socket}",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    log = (tmp_path / "pulse.log").open("w")
    daemon = subprocess.Popen(
        [
            "pulseaudio",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "-n",
            "-F",
            str(config),
            "--system=false",
            "--disallow-exit",
            "--log-target=stderr",
        ],
        env={**os.environ, **env},
        stdout=log,
        stderr=log,
    )
    try:
        for _ in range(100):
            ok = (
                subprocess.run(
                    ["pactl", "info"], env={**os.environ, **env}, capture_output=True, timeout=5
                ).returncode
                == 0
            )
            if ok:
                break
            try:
                daemon.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"pulseaudio exited: {(tmp_path / 'pulse.log').read_text()}")
        else:
            raise RuntimeError("pulseaudio did not come up in 10 s")
        yield env
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
