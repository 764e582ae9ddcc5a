"""The pure parts of resuming: turn tracking, record trimming, the resume query, the
client's replay buffer and its sample anchor."""

from __future__ import annotations

import numpy as np

from streamkit.core.clock import NS_PER_S
from streamkit.store import SessionRecord, StoredTurn
from streamkit.transport.keeper import TurnTracker, parse_resume, trim_record
from streamkit.transport.replay import ReplayBuffer, SampleAnchor
from streamkit.transport.resume import resume_url


def test_a_turn_opens_at_its_first_mark_and_completes_when_its_answer_is_sent() -> None:
    tracker = TurnTracker()
    assert not tracker.mark("u1", "asr.vad_start")
    assert tracker.open == {"u1"}
    assert not tracker.mark("u2", "asr.vad_start")
    assert not tracker.mark("u1", "sent.transcript.final")
    assert tracker.mark("u1", "sent.response.done")
    assert tracker.open == {"u2"}
    assert tracker.completed == 1
    assert not tracker.mark("u1", "sent.metrics")  # a late mark does not reopen it
    assert tracker.open == {"u2"}


def test_without_answers_a_turn_ends_when_speech_stopped_is_sent() -> None:
    tracker = TurnTracker(answers=False)
    tracker.mark("u1", "asr.vad_start")
    assert not tracker.mark("u1", "sent.response.done")
    assert tracker.mark("u1", "sent.speech.stopped")
    assert tracker.open == frozenset()


def test_answers_the_client_never_received_are_dropped_from_the_record() -> None:
    turns = tuple(StoredTurn(f"q{i}", f"a{i}", i, i + 1) for i in range(3))
    record = SessionRecord("s", turns=turns, answered=5)
    assert trim_record(record, None) == record
    assert trim_record(record, 5) == record
    assert trim_record(record, 9) == record
    trimmed = trim_record(record, 4)
    assert [t.user for t in trimmed.turns] == ["q0", "q1"]
    assert trimmed.answered == 4
    assert trim_record(record, 0).turns == ()


def test_resume_query_is_parsed_strictly() -> None:
    assert parse_resume("") is None
    assert parse_resume("resume=") is None
    assert parse_resume("resume=a%20b") is None  # not an id
    assert parse_resume("resume=" + "x" * 65) is None
    request = parse_resume("token=t&resume=ab_12-c&answered=3")
    assert request is not None
    assert request.session_id == "ab_12-c"
    assert request.answered == 3
    request = parse_resume("resume=abc&answered=-1")
    assert request is not None
    assert request.answered is None


def test_resume_url_keeps_the_other_parameters() -> None:
    assert resume_url("ws://h:1/ws", "abc", 2) == "ws://h:1/ws?resume=abc&answered=2"
    assert resume_url("ws://h/ws?token=t", "abc", 0) == "ws://h/ws?token=t&resume=abc&answered=0"


def test_replay_buffer_keeps_what_is_not_answered_and_is_bounded() -> None:
    buffer = ReplayBuffer(max_samples=1000)
    for i in range(5):
        buffer.append(i * 320, np.full(320, i, np.float32))
    assert len(buffer) == 960
    assert buffer.dropped == 640
    assert buffer.start == 640
    buffer.settle(1000)  # inside a chunk: the chunk is cut there
    assert buffer.start == 1000
    chunks = buffer.pending()
    assert chunks[0][0] == 1000
    assert chunks[0][1][0] == 3.0
    assert sum(len(c) for _, c in chunks) == 1600 - 1000
    buffer.settle(10_000)
    assert len(buffer) == 0
    assert buffer.pending() == []
    assert buffer.start is None


def test_sample_anchor_maps_server_time_to_the_client_sample_index() -> None:
    anchor = SampleAnchor(index=16_000, server_ns=100 * NS_PER_S)
    assert anchor.to_index(100 * NS_PER_S) == 16_000
    assert anchor.to_index(101 * NS_PER_S + NS_PER_S // 2) == 16_000 + 24_000
    assert anchor.to_index(99 * NS_PER_S) == 0
