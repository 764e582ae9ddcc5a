"""Pure codec, outbox policy and rate limiter: exhaustive, no I/O."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.core.clock import NS_PER_S
from streamkit.core.events import TranscriptFinal, Word
from streamkit.transport.codecs.v1 import (
    decode_binary,
    decode_text,
    encode_audio,
    encode_event,
    encode_video,
)
from streamkit.transport.limits import Limits, RateLimiter
from streamkit.transport.outbox import OutboxCore, OutItem
from streamkit.transport.protocol import (
    HEADER,
    AudioAppend,
    FrameHeader,
    InputCommit,
    ProtocolError,
    SessionUpdate,
    VideoFrameIn,
)


def _code(result: object) -> str:
    assert isinstance(result, ProtocolError), result
    return result.code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('"a string"', "invalid_json"),
        ("{}", "unknown_type"),
        ('{"type": "nope"}', "unknown_type"),
        ('{"type": 5}', "unknown_type"),
        ('{"type": "audio.append"}', "unknown_type"),
        ('{"type": "session.update", "pipeline": 3}', "invalid_message"),
        ('{"type": "session.update", "bogus": true}', "invalid_message"),
        ('{"type": "session.update", "source": "moon"}', "invalid_message"),
        ('{"type": "response.cancel", "response_id": []}', "invalid_message"),
        ('{"type": "input.commit", "x": 1}', "invalid_message"),
    ],
)
def test_text_errors_have_stable_codes(text: str, code: str) -> None:
    assert _code(decode_text(text)) == code


def test_text_messages_decode() -> None:
    assert decode_text('{"type": "input.commit"}') == InputCommit()
    update = decode_text('{"type": "session.update", "pipeline": "echo", "partials": false}')
    assert update == SessionUpdate(pipeline="echo", partials=False)
    assert _code(decode_text("x" * 20000)) == "message_too_large"


def test_audio_roundtrip_and_header_fields() -> None:
    samples = np.linspace(-1, 1, 320, dtype=np.float32)
    frame = decode_binary(encode_audio(samples, seq=7, capture_ns=-5 * NS_PER_S))
    assert isinstance(frame, AudioAppend)
    assert frame.header.seq == 7
    assert frame.header.capture_ns == -5 * NS_PER_S
    assert frame.samples.dtype == np.float32
    assert len(frame.samples) == 320
    np.testing.assert_allclose(frame.samples, samples, atol=1 / 16000)


def test_binary_errors() -> None:
    good = encode_audio(np.zeros(160, np.float32), 0, 0)
    assert _code(decode_binary(b"")) == "invalid_frame"
    assert _code(decode_binary(good[:10])) == "invalid_frame"
    assert _code(decode_binary(b"XX" + good[2:])) == "invalid_frame"
    assert _code(decode_binary(good[:2] + b"\x02" + good[3:])) == "unsupported_version"
    assert _code(decode_binary(good[:3] + b"\x09" + good[4:])) == "invalid_frame"
    assert _code(decode_binary(good[:-1])) == "invalid_frame"  # odd PCM16 length
    assert _code(decode_binary(good[: HEADER.size])) == "invalid_frame"  # no samples
    for rate, channels, fmt in ((48000, 1, 1), (16000, 2, 1), (16000, 1, 3)):
        header = FrameHeader(1, fmt, channels, rate, 0, 0).pack()
        assert _code(decode_binary(header + b"\0\0")) == "unsupported_format"
    big = FrameHeader(1, 1, 1, 16000, 0, 0).pack() + bytes(Limits().max_audio_bytes + 2)
    assert _code(decode_binary(big)) == "message_too_large"
    assert _code(decode_binary(encode_video(b"not a jpeg", 0, 0))) == "invalid_image"
    video = decode_binary(encode_video(b"\xff\xd8\xff\xe0rest", 3, 9))
    assert isinstance(video, VideoFrameIn)
    assert video.header.seq == 3


@given(st.binary(max_size=200))
def test_any_bytes_decode_to_a_frame_or_an_error(data: bytes) -> None:
    result = decode_binary(data)
    assert isinstance(result, AudioAppend | VideoFrameIn | ProtocolError)


@given(st.text(max_size=200))
def test_any_text_decodes_to_a_message_or_an_error(text: str) -> None:
    decode_text(text)  # never raises


def test_event_encoding_uses_the_tag_as_type() -> None:
    final = TranscriptFinal("u1", "hi", [Word("hi", 1, 2, 0.9)], 1, 2)
    assert encode_event(final).startswith(b'{"type":"transcript.final"')


def _item(kind: str, droppable: bool, key: str | None = None) -> OutItem:
    return OutItem(kind, kind.encode(), droppable, key)


def test_outbox_coalesces_partials_and_keeps_order() -> None:
    box = OutboxCore(8)
    box.offer(_item("p1", True, "partial:u"))
    box.offer(_item("f", False))
    box.offer(_item("p2", True, "partial:u"))
    assert [box.pop().type for _ in range(2)] == ["f", "p2"]  # type: ignore[union-attr]
    assert box.coalesced == 1
    assert box.dropped == 0


def test_outbox_drops_droppable_first_and_refuses_when_full_of_finals() -> None:
    box = OutboxCore(3)
    assert box.offer(_item("m", True, "metrics"))
    assert box.offer(_item("f1", False))
    assert box.offer(_item("f2", False))
    assert box.offer(_item("f3", False))  # the metrics event makes room
    assert box.dropped == 1
    assert box.offer(_item("p", True, "partial:x"))  # dropped itself: nothing droppable queued
    assert box.dropped == 2
    assert not box.offer(_item("f4", False))  # refused: the caller must wait
    assert [box.pop().type for _ in range(3)] == ["f1", "f2", "f3"]  # type: ignore[union-attr]


def test_rate_limiter_refills_with_time() -> None:
    limits = Limits(messages_per_s=10, message_burst=2, bytes_per_s=1e9, bytes_burst=1e9)
    limiter = RateLimiter(limits, 0)
    assert limiter.allow(0, 1)
    assert limiter.allow(0, 1)
    assert not limiter.allow(0, 1)
    assert limiter.allow(NS_PER_S // 10, 1)
    small = RateLimiter(Limits(bytes_per_s=100, bytes_burst=100), 0)
    assert not small.allow(0, 101)
    assert small.allow(0, 100)
