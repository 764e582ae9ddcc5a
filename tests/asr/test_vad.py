"""VAD: the pure segmenter (fast) and streaming Silero on real audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamkit.asr.vad import WINDOW, SileroVad, VadConfig, VadSegmenter
from streamkit.sources.media_io import load_audio


def probs(pattern: str) -> np.ndarray:
    """'S' = voiced window (0.9), '.' = silent (0.0), 'm' = in between (0.4)."""
    table = {"S": 0.9, ".": 0.0, "m": 0.4}
    return np.array([table[c] for c in pattern], dtype=np.float32)


def seg(pause_windows: int = 3, end_windows: int = 6, **kw: float) -> VadSegmenter:
    w = WINDOW / 16_000
    return VadSegmenter(VadConfig(pause_s=pause_windows * w, hangover_s=end_windows * w, **kw))


def test_start_pause_resume_end() -> None:
    vad = seg()
    events = vad.push(probs("..SSS...SS......"))
    assert [(e.kind, e.sample // WINDOW) for e in events] == [
        ("start", 2),
        ("pause", 5),
        ("resume", 8),
        ("pause", 10),
        ("end", 10),
    ]
    assert not vad.in_speech


def test_hysteresis_keeps_speech_through_middling_windows() -> None:
    vad = seg()
    events = vad.push(probs("SSmmmmmmmSS"))  # 0.4 ≥ neg threshold 0.35: still speech
    assert [e.kind for e in events] == ["start"]
    assert vad.in_speech


def test_min_speech_ignores_clicks() -> None:
    vad = seg(min_speech_s=3 * WINDOW / 16_000)
    assert vad.push(probs("S.S.SS.")) == []
    assert [e.kind for e in vad.push(probs("SSS"))] == ["start"]


def test_chunking_does_not_change_probabilities(data_dir: Path) -> None:
    audio = load_audio(data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav")
    whole = SileroVad().probs(audio)
    vad = SileroVad()
    parts = [vad.probs(audio[i : i + 333]) for i in range(0, len(audio), 333)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)
    assert whole.max() > 0.9  # real speech is detected


def test_non_speech_is_not_speech(data_dir: Path) -> None:
    rng = np.random.default_rng(7)
    clips = {
        "silence": np.zeros(48_000, dtype=np.float32),
        "white noise": (rng.standard_normal(48_000) * 0.2).astype(np.float32),
        "cockatoo": load_audio(data_dir / "video/imageio_cockatoo.mp4"),
        "office": load_audio(data_dir / "video/imageio_realshort.mp4"),
    }
    for name, audio in clips.items():
        events = seg().push(SileroVad().probs(audio))
        assert events == [], name
