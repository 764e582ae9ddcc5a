"""`streamkit replay --out` + `streamkit report` on the bundled real session."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console

from streamkit.commands.replay import replay_session
from streamkit.record import default_session_path, read_session
from streamkit.report import collect, write_report
from streamkit.testing.replay import run_on_virtual_loop


@pytest.fixture(scope="module")
def vad_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "vad.mcap"
    console = Console(file=open("/dev/null", "w"))  # noqa: SIM115
    run_on_virtual_loop(
        replay_session(default_session_path(), pipeline="vad", virtual=True, out=out,
                       console=console)
    )
    return out


def test_replay_out_records_media_events_and_metrics(vad_run: Path) -> None:
    session = read_session(vad_run)
    original = read_session(default_session_path())
    assert not session.truncated
    assert set(session.topics()) == {"/audio", "/video", "/speech", "/metrics"}
    assert len(session.packets("/video")) == len(original.packets("/video"))
    assert len(session.packets("/audio")) == len(original.packets("/audio"))
    assert len(session.packets("/speech")) == 6  # three turns: start + stop each
    final = session.final_metrics()
    assert final is not None
    assert final.samples
    assert final.snapshot["histograms"]["e2e.vad.out"]["count"] == 6


def test_report_png_and_html(vad_run: Path, tmp_path: Path) -> None:
    data = collect(read_session(vad_run))
    assert [uid for uid, _, _ in data.speech] == ["vad-0", "vad-1", "vad-2"]
    assert len(data.frames) == len(read_session(default_session_path()).packets("/video"))
    assert len(data.wave_t) > 1000
    assert 12.0 < data.duration < 16.0
    png, page = write_report(vad_run, tmp_path / "rep")
    image = cv2.imread(str(png))
    assert image is not None
    assert image.shape[1] == 1600
    assert image.shape[0] > 900
    dark = (image.mean(axis=2) < 100).mean()
    assert 0.005 < dark < 0.5  # drawn, not blank
    text = page.read_text()
    assert "e2e.vad.out" in text
    assert "data:image/png;base64," in text


def test_report_cli_rejects_non_session(tmp_path: Path) -> None:
    from streamkit.cli import main

    bad = tmp_path / "x.mcap"
    bad.write_bytes(b"not mcap at all")
    assert main(["report", str(bad), "-o", str(tmp_path / "r")]) == 2
    assert main(["report", str(tmp_path / "missing.mcap")]) == 2


@pytest.mark.slow
def test_asr_replay_report_has_real_words(tmp_path: Path) -> None:
    out = tmp_path / "asr.mcap"
    console = Console(file=open("/dev/null", "w"))  # noqa: SIM115
    run_on_virtual_loop(
        replay_session(default_session_path(), pipeline="asr", virtual=True, out=out,
                       console=console)
    )
    data = collect(read_session(out))
    words = " ".join(w for _, _, w in data.final_words).lower()
    for expected in ("blue", "forward", "meters", "now"):  # tiny.en: "bimblue f2 now" …
        assert expected in words
    assert np.all(np.diff([s for s, _, _ in data.final_words]) > -5.0)
    png, _ = write_report(out, tmp_path / "asr")
    assert png.stat().st_size > 50_000
