"""`streamkit record` as a real process: files → MCAP at real-time pace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streamkit.record.mcap import read_session


def test_record_two_files_into_a_session(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "two.mcap"
    speech = data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav"
    grid = data_dir / "av/grid/brbk7n.mpg"
    image = data_dir / "images/imageio_astronaut.png"
    done = subprocess.run(
        [sys.executable, "-m", "streamkit", "record", str(out), "--file", str(speech),
         "--file", str(grid), "--image", str(image), "--pause", "0.3"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    session = read_session(out)
    assert not session.truncated
    audio = session.packets("/audio")
    seconds = sum(p.payload.samples.size for p in audio) / 16_000
    assert abs(seconds - (2.79 + 0.3 + 3.0 + 0.3)) < 0.1
    frames = session.packets("/video")
    assert frames[0].payload.image.shape[:2] == (512, 512)  # the still, during turn 1
    assert frames[-1].payload.image.shape[:2] == (288, 360)  # the GRID talker, turn 2
    arrivals = [m.log_time - (m.item.pts + m.item.duration) for m in session.messages
                if m.topic == "/audio"]
    assert 0 <= min(arrivals) < max(arrivals) < 200_000_000  # real time, real jitter


def test_record_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamkit", "record", str(tmp_path / "x.mcap"), "--file",
         str(tmp_path / "nope.wav")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "no such file" in done.stdout
