"""`streamkit replay --out` + `streamkit report` on the bundled real session."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console

from streamkit.commands.replay import replay_session
from streamkit.record.mcap import default_session_path, read_session
from streamkit.record.report import collect, write_report
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


def test_report_on_a_media_only_recording_runs_the_pipeline_first(tmp_path: Path) -> None:
    """What `streamkit record` writes holds no events: report runs a pipeline on it first
    instead of drawing empty panels (issue 12)."""
    from streamkit.cli import main
    from streamkit.record.report import has_events

    assert not has_events(default_session_path())  # the bundled session: media only
    out = tmp_path / "rep"
    assert main(["report", str(default_session_path()), "-o", str(out), "--pipeline", "echo"]) == 0
    assert has_events(out.with_suffix(".mcap"))
    assert "vad-0" in out.with_suffix(".html").read_text()


def test_html_lists_whole_utterances_and_metadata_as_a_table(tmp_path: Path) -> None:
    from streamkit.record.report import MIN_HISTOGRAM_N, ReportData, _html, render_png

    data = ReportData(4.0, np.zeros(0), np.zeros(0, np.float32), np.zeros(0, np.float32))
    data.utterances = {"asr-1": "go forward ten meters", "asr-2": "now"}
    data.answers = {"r1": (3.5, "a long answer " * 40, False)}
    data.metadata = {"streamkit.recorder": {"base_time_ns": "12"}}
    data.samples = {"lm.x.ttft": [1_000_000] * (MIN_HISTOGRAM_N - 1)}
    page = _html(data, render_png(data), "t")  # the long answer wraps (no exception, no clip)
    assert "<li><b>asr-1</b>: go forward ten meters</li>" in page
    assert "<td>streamkit.recorder</td><td>base_time_ns</td><td>12</td>" in page
