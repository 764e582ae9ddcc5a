"""bench/peers.py's voice score: end of speech -> the first answer that starts after it; an
answer before it is a false split, never a negative latency (the same rule for every pipeline)."""

from __future__ import annotations

import pytest

from bench._peer_clients import Trace
from bench.peers import Offline, PeerResult, eos_to_token


def _offline(last_end_s: float) -> Offline:
    return Offline("ask not", [("ask", 0.5, 1.0), ("not", 1.2, last_end_s)])


def test_an_answer_before_the_end_of_speech_is_a_false_split_not_a_latency() -> None:
    result = PeerResult("voice")
    result.traces = {
        "split.wav": Trace(answers=[4.9, 6.1, 13.8]),  # two answers to part of the turn
        "clean.wav": Trace(answers=[3.5]),
        "late.wav": Trace(answers=[1.0]),  # answered only a part; nothing after the end
    }
    offline = {"split.wav": _offline(10.5), "clean.wav": _offline(3.0), "late.wav": _offline(2.0)}
    score = eos_to_token(result, offline)
    assert score.files == 3
    assert score.false_splits == 3
    assert score.unanswered == 1
    assert score.latencies == pytest.approx([3.3, 0.5])
    assert all(v >= 0 for v in score.latencies)


def test_files_without_offline_words_are_not_scored() -> None:
    result = PeerResult("voice")
    result.traces = {"silence.wav": Trace(answers=[0.2])}
    score = eos_to_token(result, {"silence.wav": Offline("", [])})
    assert (score.files, score.false_splits, score.unanswered, score.latencies) == (0, 0, 0, [])
