"""AnswerAudio: the answers as a listener hears them (timeline, cut on cancel, idle, no device)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from streamkit.core.clock import NS_PER_MS
from streamkit.core.events import ResponseAudioDone, ResponseDone
from streamkit.transport.speaker import AnswerAudio

MS = NS_PER_MS
RATE = 1_000  # 1 sample per ms keeps the arithmetic readable


def chunk(ms: int, value: float) -> np.ndarray:
    return np.full(ms, value, np.float32)


def test_answers_follow_arrival_then_pts_and_a_cancelled_one_is_cut(tmp_path: Path) -> None:
    audio = AnswerAudio()
    audio.add("r1", 10_000 * MS, RATE, chunk(40, 0.1), at=0)
    audio.add("r1", 10_040 * MS, RATE, chunk(40, 0.1), at=5 * MS)
    audio.add("r1", 10_200 * MS, RATE, chunk(40, 0.1), at=30 * MS)  # the voice fell behind
    audio.on_event(ResponseAudioDone("r1", "u1", "x", 120 * MS, 10_240 * MS), 300 * MS)
    audio.add("r2", 20_000 * MS, RATE, chunk(40, 0.5), at=1_000 * MS)
    audio.add("r2", 20_040 * MS, RATE, chunk(40, 0.5), at=1_001 * MS)
    audio.on_event(ResponseAudioDone("r2", "u2", "", 60 * MS, 20_060 * MS, cancelled=True),
                   1_030 * MS)
    audio.add("r2", 20_080 * MS, RATE, chunk(40, 0.5), at=1_040 * MS)  # after the cut: ignored
    line = audio.timeline()
    assert np.all(line[0:80] == np.float32(0.1))
    assert np.all(line[80:200] == 0)  # the gap where the voice fell behind
    assert np.all(line[200:240] == np.float32(0.1))
    assert np.all(line[1000:1060] == np.float32(0.5))  # r2 at its arrival, cut at its end
    assert len(line) == 1080
    assert np.all(line[1060:] == 0)
    seconds = audio.save(tmp_path / "a.wav")
    data, rate = sf.read(tmp_path / "a.wav")
    assert rate == RATE
    assert len(data) == 1080
    assert seconds == 1.08


def test_idle_waits_for_spoken_answers_and_gives_up_on_silent_ones() -> None:
    audio = AnswerAudio(grace_ns=3_000 * MS)
    audio.on_event(ResponseDone("r1", "u1", "hi"), 100 * MS)
    assert not audio.idle(1_000 * MS)  # its voice may still start
    assert audio.idle(4_000 * MS)  # a server without a voice
    audio.add("r1", 0, RATE, chunk(40, 0.1), at=4_100 * MS)
    assert not audio.idle(5_000 * MS)
    audio.on_event(ResponseAudioDone("r1", "u1", "hi", 40 * MS, 40 * MS), 5_100 * MS)
    assert audio.idle(5_200 * MS)


def test_no_output_device_means_text_only_and_one_message() -> None:
    audio = AnswerAudio(play=True, device="no such device 1234")
    audio.add("r1", 0, RATE, chunk(40, 0.1), at=0)
    assert audio.message.startswith("no audio output device")
    assert len(audio.timeline()) == 40  # still kept (for --save-audio)
    audio.close()
