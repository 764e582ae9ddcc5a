"""Fuzz a REAL server on loopback with thousands of malformed messages (hypothesis).

Each example starts a server, streams healthy audio from one session while a second session
sends a batch of malformed text and binary frames, and asserts: the server survives, the
fuzzed session gets exactly one ``error`` per bad message and still answers a well-formed
``session.update`` afterwards, and the healthy session's answer is right and on time.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamkit.clock import NS_PER_MS, LoopClock
from streamkit.events import ErrorEvent, ResponseDone, TranscriptFinal
from streamkit.transport import Limits, Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.echo import echo_factory
from streamkit.transport.protocol import (
    HEADER,
    AudioAppend,
    ProtocolError,
    SessionUpdated,
    decode_binary,
    decode_text,
)

pytestmark = pytest.mark.timeout(300)

LIMITS = replace(
    Limits(),
    messages_per_s=1e6,
    message_burst=1e6,
    bytes_per_s=1e9,
    bytes_burst=1e9,
    max_text_bytes=4096,
    max_audio_bytes=4096,
    max_video_bytes=4096,
)
TYPES = ["session.update", "input.commit", "response.cancel", "audio.append", "video.frame"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
wrong_fields = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | st.text(max_size=12) | json_values},
    optional={
        "pipeline": json_values,
        "source": json_values,
        "partials": json_values,
        "metrics_interval_ms": json_values,
        "response_id": json_values,
        "bogus": json_values,
    },
).map(json.dumps)
oversized_text = st.integers(4100, 6000).map(
    lambda n: json.dumps({"type": "input.commit", "pad": "a" * n})
)
texts = (st.text(max_size=64) | wrong_fields | oversized_text).filter(
    lambda t: isinstance(decode_text(t, LIMITS), ProtocolError)
)
headers = st.builds(
    lambda magic, version, kind, fmt, ch, rate, seq, cap: HEADER.pack(
        magic, version, kind, fmt, ch, 0, rate, seq, cap
    ),
    st.sampled_from([b"SK", b"SK", b"XX"]),
    st.sampled_from([1, 1, 2, 0]),
    st.sampled_from([1, 2, 3, 0]),
    st.sampled_from([1, 2, 0]),
    st.sampled_from([1, 0, 2]),
    st.sampled_from([16000, 44100, 0]),
    st.integers(0, 2**32 - 1),
    st.integers(-(2**63), 2**63 - 1),
)
framed = st.tuples(headers, st.binary(max_size=64) | st.integers(4097, 6000).map(bytes)).map(
    lambda hp: hp[0] + hp[1]
)
truncated = st.binary(max_size=HEADER.size - 1)
binaries = (framed | truncated | st.binary(max_size=80)).filter(
    lambda b: not isinstance(decode_binary(b, LIMITS), AudioAppend)
)
bad_messages = st.lists(st.one_of(texts, binaries), min_size=150, max_size=300)


async def _healthy(url: str) -> float:
    """Stream 0.6 s of audio at real-time pace, commit, return seconds to the answer."""
    clock = LoopClock()
    async with Client.connect(url) as client:
        await client.update(pipeline="echo", metrics_interval_ms=0)
        await client.stream_audio(np.full(9600, 0.01, np.float32))
        started = clock.now()
        await client.commit()
        done = await client.wait_for(lambda r: isinstance(r.event, ResponseDone), 10)
        assert isinstance(done.event, ResponseDone)
        assert not done.event.cancelled
        finals = client.of_type(TranscriptFinal)
        assert [f.text for f in finals] == ["heard 0.60 s"]
        assert not client.of_type(ErrorEvent)
        return (clock.now() - started) / 1e9


async def _fuzz(url: str, messages: list[str | bytes]) -> list[ErrorEvent]:
    async with Client.connect(url) as client:
        for message in messages:
            await client.send_raw(message)
        await client.update(metrics_interval_ms=0)  # a good message after all the bad ones
        await client.wait_for(lambda r: isinstance(r.event, SessionUpdated), 30)
        errors: list[ErrorEvent] = client.of_type(ErrorEvent)
        return errors


async def _round(messages: list[str | bytes]) -> None:
    server = Server(
        {"echo": echo_factory(tokens=5, token_ns=5 * NS_PER_MS)},
        ServerOptions(port=0, limits=LIMITS),
    )
    async with server.running():
        async with asyncio.TaskGroup() as group:
            healthy = group.create_task(_healthy(server.url))
            fuzzed = group.create_task(_fuzz(server.url, messages))
        answer_s, errors = healthy.result(), fuzzed.result()
        assert len(errors) == len(messages)
        for message, error in zip(messages, errors, strict=True):
            expected = (
                decode_text(message, LIMITS)
                if isinstance(message, str)
                else decode_binary(message, LIMITS)
            )
            if isinstance(expected, ProtocolError):
                assert error.code == expected.code
            else:  # a well-formed video frame in an audio-only session
                assert error.code == "invalid_state"
        assert answer_s < 2.0
        for _ in range(100):
            if not server.sessions:
                break
            await LoopClock().sleep(20 * NS_PER_MS)
        assert not server.sessions
        assert all(s.close_code is None for s in server.finished)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(bad_messages)
def test_thousands_of_malformed_messages_one_error_each(messages: list[str | bytes]) -> None:
    asyncio.run(_round(messages))


def test_the_strategies_cover_every_error_code_but_pipeline_ones() -> None:
    seen: set[str] = set()
    samples = [
        "nope",
        '{"type": "x"}',
        '{"type": "session.update", "pipeline": 1}',
        json.dumps({"type": "input.commit", "pad": "a" * 5000}),
    ]
    for text in samples:
        result = decode_text(text, LIMITS)
        assert isinstance(result, ProtocolError)
        seen.add(result.code)
    for data in (
        b"",
        HEADER.pack(b"SK", 2, 1, 1, 1, 0, 16000, 0, 0),
        HEADER.pack(b"SK", 1, 1, 1, 1, 0, 8000, 0, 0) + b"\0\0",
        HEADER.pack(b"SK", 1, 2, 2, 0, 0, 0, 0, 0) + b"abcd",
    ):
        result = decode_binary(data, LIMITS)
        assert isinstance(result, ProtocolError)
        seen.add(result.code)
    assert seen == {
        "invalid_json",
        "unknown_type",
        "invalid_message",
        "message_too_large",
        "invalid_frame",
        "unsupported_version",
        "unsupported_format",
        "invalid_image",
    }
    assert struct.calcsize("<2sBBBBHIIq") == HEADER.size
