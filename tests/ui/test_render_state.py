"""Pure demo pieces on real data: state from a replayed session, renderer, terminal view, keys."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console

from streamkit.core.events import Detection, Observation, ResponseDelta, ResponseDone
from streamkit.core.media import AudioChunk
from streamkit.core.packet import Packet
from streamkit.record.mcap import default_session_path, read_session
from streamkit.testing.replay import run_replay
from streamkit.ui.app import DemoApp, DemoOptions
from streamkit.ui.pipelines import load_pipeline
from streamkit.ui.render import LAYOUT, SIZE, render, video_rect
from streamkit.ui.state import DemoState
from streamkit.ui.terminal import view


@pytest.fixture(scope="module")
def state() -> DemoState:
    """State after the bundled session: its real frames and audio, VAD events, metrics."""
    trace = run_replay(load_pipeline("vad").factory, default_session_path())
    st = DemoState(source_label="bundled")
    session = read_session(default_session_path())
    for msg in session.messages:
        if isinstance(msg.item, Packet):
            st.on_media(msg.item)
    for event in trace.events:
        st.on_event(Packet(event.stream, event.seq, event.pts, 0, event.payload,
                           lineage=event.lineage))
    st.set_metrics({**trace.metrics, "lineage": {}})
    return st


def test_state_follows_the_session(state: DemoState) -> None:
    assert state.frames == len(read_session(default_session_path()).packets("/video"))
    assert state.frame is not None
    assert len(state.turns) == 3
    assert all(1.0e9 < t.speech_ns < 3.5e9 for t in state.turns)
    assert not state.speaking
    assert state.level_db < -40  # the session ends in silence
    labels = [r.label for r in state.hud_rows()]
    # on virtual time the VAD stage itself takes 0 ms (hidden); end-to-end is the VAD hangover
    assert labels == ["e2e replay.audio", "e2e replay.video", "e2e vad.out"]


def test_render_is_pure_and_draws_the_real_frame(state: DemoState) -> None:
    image = render(state)
    assert image.shape == (SIZE[1], SIZE[0], 3)
    assert np.array_equal(image, render(state))
    assert state.frame is not None
    vx, vy, vw, vh = video_rect(state.frame.shape)
    expected = cv2.resize(state.frame, (vw, vh), interpolation=cv2.INTER_AREA)
    assert np.array_equal(image[vy : vy + vh, vx : vx + vw], expected)
    for name in ("conversation", "hud"):
        x, y, w, h = LAYOUT[name]
        assert (image[y : y + h, x : x + w].max(axis=2) > 120).sum() > 400, name


def test_detections_and_answer_are_drawn(state: DemoState) -> None:
    assert state.frame is not None
    fh, fw = state.frame.shape[:2]
    st = DemoState(frame=state.frame)
    st.on_event(Packet("vision", 0, 0, 0, Observation(0, [Detection("face", 0.9, (100, 50, 120,
                                                                                  140))],
                                                      0.0, 0.5, [], fw, fh)))
    st.on_event(Packet("response", 0, 0, 0, ResponseDelta("r1", "u1", "Hello there", 0)))
    before_done = render(st)
    st.on_event(Packet("response", 1, 0, 0, ResponseDone("r1", "u1", "Hello there.")))
    image = render(st)
    vx, vy, vw, _vh = video_rect(state.frame.shape)
    scale = vw / fw
    left = vx + round(100 * scale)
    top, bottom = vy + round(50 * scale), vy + round(190 * scale)
    column = image[top:bottom, left]
    green = (column[:, 1] > 180) & (column[:, 0] < 120) & (column[:, 2] < 160)
    assert green.mean() > 0.9  # the box's left edge
    x, y, w, h = LAYOUT["conversation"]
    assert (image[y + 30 : y + h, x : x + w].max(axis=2) > 120).sum() > 100  # "Hello there."
    assert not np.array_equal(before_done, image)  # the streaming dot is gone


def test_terminal_view_shows_the_same(state: DemoState) -> None:
    console = Console(record=True, width=100)
    console.print(view(state))
    text = console.export_text()
    assert text.count("s of speech]") == 3
    assert "e2e vad.out" in text
    assert "bundled" in text


async def test_keys_mute_and_record(tmp_path: Path) -> None:
    app = DemoApp(DemoOptions(record_dir=tmp_path), Console(quiet=True))
    audio = read_session(default_session_path()).packets("/audio")
    speech = max(audio, key=lambda p: float(np.abs(p.payload.samples).max()))
    assert float(np.abs(speech.payload.samples).max()) > 0.05
    assert app.key("m")
    muted = app._tap("audio", speech)
    assert muted is not None
    assert isinstance(muted.payload, AudioChunk)
    assert not muted.payload.samples.any()
    assert muted.pts == speech.pts
    assert app.state.level_db == -120.0
    assert app.key("m")
    assert app._tap("audio", speech) is speech
    assert app.key("r")
    assert app.state.recording
    app._tap("audio", speech)
    assert app.key("r")
    assert not app.state.recording
    recorded = read_session(tmp_path / "streamkit-demo-1.mcap")
    assert len(recorded.packets("/audio")) == 1
    assert not app.key("q")


def test_every_answer_stays_listed_with_its_latency_and_the_headline() -> None:
    """The conversation keeps all turns (not only the latest answer); the HUD leads with
    end of speech → first token / → final transcript, the d key shows the stages."""
    from streamkit.core.events import SpeechStopped, TranscriptFinal

    st = DemoState()
    for i in range(3):
        uid, t = f"u{i}", i * 10**10
        st.on_event(Packet("speech", i, t, 0, SpeechStopped(uid, t)), t)
        st.on_event(Packet("transcript", i, t, 0, TranscriptFinal(uid, f"question {i}", [], t, t)),
                    t + 400_000_000)
        st.on_event(Packet("response", i, t, 0, ResponseDelta(f"r{i}", uid, "answer", 0)),
                    t + (i + 1) * 500_000_000)
        st.on_event(Packet("response", i, t, 0, ResponseDone(f"r{i}", uid, f"answer {i}")),
                    t + 2 * 10**9)
    assert [t.eos_to_final_ns for t in st.turns] == [400_000_000] * 3
    assert [t.eos_to_first_token_ns for t in st.turns] == [5e8, 1e9, 1.5e9]
    n, p50, p90 = st.headline()["first answer token"]
    assert (n, p50, p90) == (3, 1000.0, 1400.0)
    console = Console(record=True, width=120)
    console.print(view(st))
    text = console.export_text()
    assert all(f"answer {i}" in text for i in range(3))
    assert "→ first answer token p50 1000 ms p90 1400 ms (n=3)" in text
    headline = render(st)
    st.details = True
    assert not np.array_equal(headline, render(st))  # the per-stage view
