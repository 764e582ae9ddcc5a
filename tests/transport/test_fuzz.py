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

from streamkit.core.clock import NS_PER_MS, LoopClock
from streamkit.core.events import ErrorEvent, ResponseDone, TranscriptFinal
from streamkit.transport import Limits, Server, ServerOptions
from streamkit.transport.client import Client
from streamkit.transport.codecs.v1 import decode_binary, decode_text
from streamkit.transport.echo import echo_factory
from streamkit.transport.protocol import (
    ERROR_CODES,
    HEADER,
    AudioAppend,
    InputCommit,
    ProtocolError,
    ResponseCancel,
    SessionUpdate,
    SessionUpdated,
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


def _nest(depth: int, kinds: str, leaf: str) -> str:
    """``depth`` arrays/objects around ``leaf`` (``kinds`` cycles through ``[`` and ``{``)."""
    opens = "".join("[" if kinds[i % len(kinds)] == "[" else '{"k":' for i in range(depth))
    closes = "".join("]" if kinds[i % len(kinds)] == "[" else "}" for i in reversed(range(depth)))
    return opens + leaf + closes


deep = st.builds(
    _nest, st.integers(1, 1300), st.sampled_from(["[", "{", "[{", "{[["]), st.just("1")
)
deep_in_field = st.builds(
    lambda field, value: json.dumps({"type": "session.update"})[:-1] + f', "{field}": {value}}}',
    st.sampled_from(["pipeline", "partials", "metrics_interval_ms", "bogus"]),
    deep,
)
digits = st.integers(1, 3000).map(lambda n: "9" * n)
huge_numbers = st.builds(
    lambda sign, body, frac, exp: f"{sign}{body}{frac}{exp}",
    st.sampled_from(["", "-"]),
    digits,
    st.sampled_from(["", ".5", "." + "1" * 200]),
    st.sampled_from(["", "e999999", "E-400", "e+308", "e" + "9" * 100]),
)
number_in_field = huge_numbers.map(
    lambda n: '{"type": "session.update", "metrics_interval_ms": ' + n + "}"
)
long_strings = st.builds(
    lambda field, n, char: json.dumps({"type": "session.update", field: char * n}),
    st.sampled_from(["pipeline", "source", "response_id", "bogus"]),
    st.integers(100, 2000),
    st.sampled_from(["a", "é", "\\", '"', "\u0000", "😀", "["]),
).filter(lambda t: len(t.encode()) <= LIMITS.max_text_bytes)
costly = deep | deep_in_field | number_in_field | huge_numbers | long_strings
"""What makes a decoder spend stack, time or memory: deep nesting, huge numbers, long strings."""

texts = (st.text(max_size=64) | wrong_fields | oversized_text | costly).filter(
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


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(costly | st.text(max_size=300) | st.binary(max_size=300))
def test_decode_text_never_raises_and_bounds_what_a_message_costs(text: str | bytes) -> None:
    """Deep nesting, huge numbers and long strings: a value, never an exception."""
    result = decode_text(text, Limits())
    assert isinstance(result, ProtocolError | SessionUpdate | InputCommit | ResponseCancel)
    if isinstance(result, ProtocolError):
        assert result.code in ERROR_CODES
        assert len(result.message) <= 300


@pytest.mark.parametrize("depth", [16, 17, 983, 984, 2500])
@pytest.mark.parametrize("kind", ["[", "{"])
def test_nesting_beyond_the_limit_is_invalid_json_at_the_limit_is_parsed(
    depth: int, kind: str
) -> None:
    text = _nest(depth, kind, "1")
    result = decode_text(text, Limits())
    assert isinstance(result, ProtocolError)
    if depth > Limits().max_json_depth:
        assert result.code == "invalid_json"
        assert "nested" in result.message
    else:  # parsed: not an object with a type (arrays) or no known type (objects)
        assert result.code in ("invalid_json", "unknown_type")
        assert "nested" not in result.message
    # brackets inside strings do not count
    inside = json.dumps({"type": "session.update", "pipeline": "[" * depth})
    assert isinstance(decode_text(inside, Limits()), SessionUpdate)


def test_huge_numbers_are_refused_before_parsing() -> None:
    for number in ("1" + "0" * 5000, "-" + "9" * 65, "1e" + "9" * 70):
        result = decode_text('{"type": "session.update", "metrics_interval_ms": ' + number + "}")
        assert isinstance(result, ProtocolError)
        assert result.code == "invalid_json"
        assert "number" in result.message
    ok = decode_text('{"type": "session.update", "metrics_interval_ms": 1000}')
    assert isinstance(ok, SessionUpdate)
