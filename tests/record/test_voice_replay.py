"""The spoken answer is recorded into the MCAP session and replays deterministically.

The bundled real session replays on virtual time through the full assistant with the Piper
voice (virtual compute: the voice speaks with noise 0, so the same text gives the same
samples); ``--out`` records every event, the ``response.audio`` chunks included. Two replays
give the same answers and bit-identical answer audio, and the recorded chunks decode back.

Every model call is charged a fixed cost by its work (:class:`FixedCosts`): measured CPU
time drifts on a loaded 2-core machine, which moved a turn's timing by enough to cancel an
answer in one replay and not the other (CI, stop 26). The second replay runs beside a process
that keeps a core busy, so the test fails if any charge is the machine's rather than the work's.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from streamkit.core.events import ResponseAudio, ResponseAudioDone, ResponseDone
from streamkit.record.mcap import default_session_path, read_session

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def spoken(path: Path) -> tuple[list[ResponseAudio], list[ResponseAudioDone], list[ResponseDone]]:
    session = read_session(path)
    payloads: list[Any] = [m.item.payload for m in session.messages if hasattr(m.item, "payload")]
    return (
        [p for p in payloads if isinstance(p, ResponseAudio)],
        [p for p in payloads if isinstance(p, ResponseAudioDone)],
        [p for p in payloads if isinstance(p, ResponseDone)],
    )


def timeline(path: Path) -> list[tuple[int, str, str]]:
    """(log time, topic, payload type) of every recorded packet (metrics left out)."""
    return [
        (m.log_time, m.topic, type(m.item.payload).__name__)
        for m in read_session(path).messages
        if hasattr(m.item, "payload")
    ]


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """A process spinning on one core while the block runs."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def test_spoken_answers_are_recorded_and_replay_identically(tmp_path: Path) -> None:
    from streamkit.commands.replay import replay_session
    from streamkit.pipelines.assistant import AssistantConfig
    from streamkit.pipelines.costs import FixedCosts
    from streamkit.testing.replay import run_on_virtual_loop
    from streamkit.tts import TTSSpec

    config = AssistantConfig(tts=TTSSpec("piper"), vision=False, costs=FixedCosts())
    runs, timelines = [], []
    for i in range(2):
        out = tmp_path / f"replay{i}.mcap"
        with busy_core() if i else contextlib.nullcontext():
            run_on_virtual_loop(
                replay_session(
                    default_session_path(),
                    pipeline="assistant",
                    virtual=True,
                    out=out,
                    console=Console(quiet=True),
                    show_events=False,
                    config=config,
                )
            )
        runs.append(spoken(out))
        timelines.append(timeline(out))
    # every event at the same virtual time, the busy core notwithstanding
    assert timelines[0] == timelines[1]
    (audio_a, done_a, answers_a), (audio_b, done_b, answers_b) = runs
    assert audio_a, "no spoken answer was recorded"
    assert [a.text for a in answers_a] == [a.text for a in answers_b]
    assert [(d.text, d.cancelled) for d in done_a] == [(d.text, d.cancelled) for d in done_b]
    assert [c.pcm for c in audio_a] == [c.pcm for c in audio_b]
    assert [(c.index, c.text, c.sample_rate) for c in audio_a] == [
        (c.index, c.text, c.sample_rate) for c in audio_b
    ]
    # each spoken answer: its chunks' words are the heard text of its response.audio.done
    for done in done_a:
        chunks = [c for c in audio_a if c.response_id == done.response_id]
        if not done.cancelled:
            assert "".join(c.text for c in chunks) == done.text
        assert done.played_ns <= sum(c.duration for c in chunks)
