"""The Realtime codec without a socket: client events → commands, pipeline events → events.

Every server event the codec emits here is also validated strictly against the stock SDK's
pydantic model for its type (``realtime_check.validate``) when ``openai`` is installed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from streamkit.core.events import (
    ErrorEvent,
    ResponseAudio,
    ResponseAudioDone,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
)
from streamkit.transport.codecs.realtime import RealtimeCodec
from streamkit.transport.codecs.realtime_shapes import DEFAULT_SESSION, check, merge
from streamkit.transport.codecs.v1 import encode_audio, encode_video
from streamkit.transport.commands import AddText, ClearInput, ConfigureTurns, ImageIn, Respond
from streamkit.transport.outbox import OutItem
from streamkit.transport.protocol import (
    AudioAppend,
    InputCommit,
    ProtocolError,
    ResponseCancel,
    VideoFrameIn,
)

try:
    from tests.transport.realtime_check import validate
except pytest.skip.Exception:  # openai not installed: shapes are still checked by hand
    validate = None

MS = 1_000_000
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16


class Driver:
    """Runs a codec like a connection does, with scripted command results."""

    def __init__(self, **kwargs: Any) -> None:
        self.codec = RealtimeCodec("s1", "gpt-realtime", **kwargs)
        self.events: list[dict[str, Any]] = []
        self.commands: list[Any] = []
        self._take(self.codec.created())

    def _take(self, items: list[OutItem]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            event = json.loads(item.data)
            assert event["type"] == item.type
            if validate is not None:
                validate(event)
            out.append(event)
        self.events.extend(out)
        return out

    def send(
        self, event: dict[str, Any] | str | bytes, results: dict[type, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Send one frame; each command's result is ``results[type]`` (default None)."""
        frame = json.dumps(event) if isinstance(event, dict) else event
        out: list[dict[str, Any]] = []
        for thing in self.codec.decode(frame):
            if isinstance(thing, OutItem):
                out += self._take([thing])
            else:
                self.commands.append(thing)
                value = (results or {}).get(type(thing))
                out += self._take(self.codec.result(thing, value))
        return out

    def pipe(self, *events: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in events:
            out += self._take(self.codec.encode(event))
        return out


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def b64(samples: int, value: int = 0) -> str:
    return base64.b64encode(np.full(samples, value, "<i2").tobytes()).decode()


# -- session -----------------------------------------------------------------------------


def test_session_created_first_with_the_effective_configuration() -> None:
    d = Driver()
    (created,) = d.events
    assert created["type"] == "session.created"
    session = created["session"]
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["output_modalities"] == ["text"]


def test_session_update_merges_recursively_and_null_clears() -> None:
    d = Driver()
    out = d.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            },
        }
    )
    assert types(out) == ["session.updated"]
    assert d.commands[-1] == ConfigureTurns(True, 500, 0.5, "Be brief.", None)
    out = d.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )
    session = out[0]["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["input"]["transcription"] == {"model": "whisper-1"}
    assert session["audio"]["input"]["turn_detection"] is None
    assert d.commands[-1].auto_answer is False
    out = d.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}
                },
                "max_output_tokens": 50,
            },
        }
    )
    td = out[0]["session"]["audio"]["input"]["turn_detection"]
    assert td["silence_duration_ms"] == 800
    assert td["prefix_padding_ms"] == 300
    assert d.commands[-1] == ConfigureTurns(True, 800, 0.5, "Be brief.", 50)


@pytest.mark.parametrize(
    ("eagerness", "silence_ms"), [("high", 500), ("low", 2000), ("auto", None), (None, None)]
)
def test_semantic_vad_leaves_the_end_of_turn_to_the_policy_and_eagerness_bounds_it(
    eagerness: str | None, silence_ms: int | None
) -> None:
    """``semantic_vad`` is not the server VAD's 500 ms: its eagerness sets the longest wait
    (None: the server's end-of-turn policy as it is), whatever ``silence_duration_ms`` the
    session held before."""
    d = Driver()
    td: dict[str, Any] = {"type": "semantic_vad"}
    if eagerness is not None:
        td["eagerness"] = eagerness
    out = d.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}},
        }
    )
    assert types(out) == ["session.updated"]
    echoed = out[0]["session"]["audio"]["input"]["turn_detection"]
    assert echoed["type"] == "semantic_vad"
    assert d.commands[-1].silence_ms == silence_ms
    assert d.commands[-1].auto_answer is True


@pytest.mark.parametrize(
    ("update", "code", "param"),
    [
        ({"output_modalities": ["audio"]}, "unsupported_value", "session.output_modalities"),
        ({"output_modalities": ["video"]}, "invalid_value", "session.output_modalities"),
        (
            {"audio": {"input": {"format": {"type": "audio/pcmu"}}}},
            "unsupported_value",
            "session.audio.input.format",
        ),
        (
            {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            "unsupported_value",
            "session.audio.input.format.rate",
        ),
        (
            {"audio": {"input": {"turn_detection": {"type": "magic"}}}},
            "invalid_value",
            "session.audio.input.turn_detection.type",
        ),
        (
            {
                "audio": {
                    "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}
                }
            },
            "invalid_value",
            "session.audio.input.turn_detection.eagerness",
        ),
        (
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": "x"}}}},
            "invalid_value",
            "session.audio.input.turn_detection.threshold",
        ),
        ({"tools": [{"type": "function", "name": "f"}]}, "unsupported_value", "session.tools"),
        ({"instructions": 3}, "invalid_value", "session.instructions"),
        ({"max_output_tokens": 0}, "invalid_value", "session.max_output_tokens"),
        ({"type": "transcription"}, "invalid_value", "session.type"),
    ],
)
def test_bad_session_update_is_one_error_and_keeps_the_session(
    update: dict[str, Any], code: str, param: str
) -> None:
    d = Driver()
    before = json.dumps(d.codec.session, sort_keys=True)
    out = d.send(
        {"type": "session.update", "event_id": "c1", "session": {"type": "realtime", **update}}
    )
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == code
    assert out[0]["error"]["param"] == param
    assert out[0]["error"]["event_id"] == "c1"
    assert json.dumps(d.codec.session, sort_keys=True) == before
    assert d.commands == []


def test_merge_and_check_are_pure() -> None:
    base = merge(DEFAULT_SESSION, {})
    assert base == DEFAULT_SESSION
    assert base is not DEFAULT_SESSION
    merged = merge(base, {"audio": {"input": {"turn_detection": None}}})
    assert base["audio"]["input"]["turn_detection"] is not None
    assert merged["audio"]["output"] == base["audio"]["output"]
    assert check(base) is None
    assert check(merge(base, {"output_modalities": ["audio"]}), audio_out=True) is None


# -- input audio -------------------------------------------------------------------------


def test_append_decodes_pcm16_at_24k_on_the_audio_timeline() -> None:
    d = Driver()
    assert d.send({"type": "input_audio_buffer.append", "audio": b64(2400, 16384)}) == []
    assert d.send({"type": "input_audio_buffer.append", "audio": b64(4800)}) == []
    first, second = d.commands
    assert isinstance(first, AudioAppend)
    assert isinstance(second, AudioAppend)
    assert first.header.sample_rate == 24000
    assert first.samples.dtype == np.float32
    assert np.allclose(first.samples, 0.5)
    assert len(first.samples) == 2400
    assert (first.header.seq, second.header.seq) == (0, 1)
    assert (first.header.capture_ns, second.header.capture_ns) == (0, 100 * MS)
    assert d.codec.samples_appended == 7200


@pytest.mark.parametrize(
    ("audio", "why"),
    [
        ("@@@not base64@@@", "base64"),
        (base64.b64encode(b"\x01\x02\x03").decode(), "odd"),
        (None, "audio"),
    ],
)
def test_bad_append_is_one_error_with_the_client_event_id(audio: Any, why: str) -> None:
    d = Driver()
    event = {"type": "input_audio_buffer.append", "event_id": "evt_7"}
    if audio is not None:
        event["audio"] = audio
    out = d.send(event)
    assert types(out) == ["error"]
    error = out[0]["error"]
    assert error["code"] == "invalid_value"
    assert error["param"] == "audio"
    assert error["event_id"] == "evt_7"
    assert why in error["message"]
    assert d.commands == []
    assert d.codec.samples_appended == 0


def test_commit_needs_100_ms_of_audio() -> None:
    d = Driver()
    d.send({"type": "input_audio_buffer.append", "audio": b64(2000)})
    out = d.send({"type": "input_audio_buffer.commit", "event_id": "e"})
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "input_audio_buffer_commit_empty"
    d.send({"type": "input_audio_buffer.append", "audio": b64(400)})
    d.send({"type": "input_audio_buffer.commit"})
    assert isinstance(d.commands[-1], InputCommit)
    out = d.send({"type": "input_audio_buffer.commit"})  # the buffer is empty again
    assert types(out) == ["error"]


def test_server_vad_turn_events_in_order() -> None:
    d = Driver()
    d.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            },
        }
    )
    d.codec.audio_ms = lambda t: t // MS  # the client source's timeline map
    out = d.pipe(
        SpeechStarted("u1", 1000 * MS),
        TranscriptPartial("u1", "in bean", []),
        SpeechStopped("u1", 2280 * MS),
        TranscriptFinal("u1", " in being", [], 1000 * MS, 1800 * MS, False),
        TranscriptFinal("u1", " comparatively modern", [], 1800 * MS, 2280 * MS, True),
    )
    assert types(out) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.done",
    ]
    started, stopped, committed, added, d1, d2, completed, done = out
    item = started["item_id"]
    assert started["audio_start_ms"] == 700  # 1000 ms - 300 ms prefix padding
    assert stopped["audio_end_ms"] == 2280
    assert stopped["item_id"] == item
    assert committed["item_id"] == added["item"]["id"] == done["item"]["id"] == item
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    assert d1["delta"] + d2["delta"] == completed["transcript"] == "in being comparatively modern"
    assert completed["usage"] == {"type": "duration", "seconds": 1.28}
    assert done["item"]["content"][0]["transcript"] == completed["transcript"]


def test_transcription_off_sends_no_transcription_events() -> None:
    d = Driver()
    out = d.pipe(
        SpeechStarted("u1", 0),
        SpeechStopped("u1", 900 * MS),
        TranscriptFinal("u1", " hello", [], 0, 900 * MS, True),
    )
    assert "conversation.item.input_audio_transcription.delta" not in types(out)
    assert types(out)[-1] == "conversation.item.done"
    assert out[-1]["item"]["content"][0]["transcript"] is None


def test_manual_turns_commit_one_item_for_every_utterance_since_the_last_commit() -> None:
    d = Driver()
    d.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": None, "transcription": {"model": "x"}}},
            },
        }
    )
    d.send({"type": "input_audio_buffer.append", "audio": b64(24000)})
    out = d.pipe(
        SpeechStarted("u1", 0),
        SpeechStopped("u1", 500 * MS),
        TranscriptFinal("u1", " one", [], 0, 500 * MS, True),
        SpeechStarted("u2", 900 * MS),
    )
    assert out == []  # no VAD events in manual mode, nothing before the commit
    out = d.send({"type": "input_audio_buffer.commit"}, {InputCommit: ("u1", "u2")})
    assert types(out) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.delta",
    ]
    out = d.send({"type": "response.create"})
    assert d.commands[-1] == Respond(("u2",), None, None)
    out += d.pipe(TranscriptFinal("u2", " two", [], 900 * MS, 1200 * MS, True))
    assert types(out)[1:] == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.done",
    ]
    assert out[-2]["transcript"] == "one two"


def test_commit_of_silence_completes_an_empty_item_at_once() -> None:
    d = Driver()
    d.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": None, "transcription": {"model": "x"}}},
            },
        }
    )
    d.send({"type": "input_audio_buffer.append", "audio": b64(4800)})
    out = d.send({"type": "input_audio_buffer.commit"}, {InputCommit: None})
    assert types(out) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.done",
    ]
    assert out[3]["transcript"] == ""
    assert out[2]["delta"] == ""


def test_clear_discards_the_buffered_utterances() -> None:
    d = Driver()
    d.pipe(SpeechStarted("u1", 0))
    out = d.send({"type": "input_audio_buffer.clear"})
    assert types(out) == ["input_audio_buffer.cleared"]
    assert d.commands[-1] == ClearInput(("u1",))
    assert d.pipe(SpeechStopped("u1", 10 * MS), TranscriptFinal("u1", "x", [], 0, 1, True)) == []


# -- responses ---------------------------------------------------------------------------

LIFECYCLE_OPEN = [
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
LIFECYCLE_CLOSE = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]


def test_response_create_and_the_whole_lifecycle() -> None:
    d = Driver()
    out = d.send(
        {"type": "response.create", "response": {"instructions": "Shout.", "max_output_tokens": 20}}
    )
    assert types(out) == ["response.created"]
    assert d.commands[-1] == Respond((), "Shout.", 20)
    created = out[0]["response"]
    assert created["status"] == "in_progress"
    assert created["output"] == []
    out = d.pipe(
        ResponseDelta("resp-0", "u1", "Paris", 0),
        ResponseDelta("resp-0", "u1", " is", 1),
        ResponseDone("resp-0", "u1", "Paris is", prompt_tokens=30, completion_tokens=2),
    )
    assert types(out) == [
        *LIFECYCLE_OPEN,
        "response.output_text.delta",
        "response.output_text.delta",
        *LIFECYCLE_CLOSE,
    ]
    rid = created["id"]
    assert all(e["response_id"] == rid for e in out if "response_id" in e)
    item_id = out[0]["item"]["id"]
    assert out[0]["item"]["content"] == []
    assert out[0]["item"]["status"] == "in_progress"
    assert out[2]["part"] == {"type": "text", "text": ""}
    assert [e["item_id"] for e in out[3:7]] == [item_id] * 4
    assert out[5]["text"] == "Paris is"
    assert out[6]["part"] == {"type": "text", "text": "Paris is"}
    assert out[7]["item"]["content"] == [{"type": "output_text", "text": "Paris is"}]
    done = out[-1]["response"]
    assert done["status"] == "completed"
    assert done["status_details"] is None
    assert done["output"][0]["id"] == item_id
    assert done["usage"]["total_tokens"] == 32
    assert d.codec.responses.active is None


def test_an_answer_the_pipeline_starts_itself_opens_a_response() -> None:
    d = Driver()
    out = d.pipe(ResponseDelta("resp-3", "u1", "Hi", 0), ResponseDone("resp-3", "u1", "Hi"))
    assert types(out) == [
        "response.created",
        *LIFECYCLE_OPEN,
        "response.output_text.delta",
        *LIFECYCLE_CLOSE,
    ]
    empty = d.pipe(ResponseDone("resp-4", "u2", ""))  # an answer with no text at all
    assert types(empty) == ["response.created", *LIFECYCLE_OPEN, *LIFECYCLE_CLOSE]


def test_second_response_create_while_active_is_an_error() -> None:
    d = Driver()
    d.send({"type": "response.create"})
    out = d.send({"type": "response.create", "event_id": "again"})
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "conversation_already_has_active_response"
    assert out[0]["error"]["event_id"] == "again"


def test_cancel_mid_answer_then_no_delta_after_done() -> None:
    d = Driver()
    d.send({"type": "response.create"})
    d.pipe(ResponseDelta("resp-0", "u1", "Once", 0))
    rid = d.codec.responses.active.id  # type: ignore[union-attr]
    out = d.send({"type": "response.cancel", "response_id": rid}, {ResponseCancel: True})
    assert out == []
    assert d.commands[-1] == ResponseCancel(rid)
    out = d.pipe(ResponseDone("resp-0", "u1", "Once", cancelled=True))
    assert types(out) == LIFECYCLE_CLOSE
    response = out[-1]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert response["output"][0]["status"] == "incomplete"
    assert d.pipe(ResponseDelta("resp-0", "u1", " upon", 1)) == []


def test_cancel_before_the_answer_started_closes_the_response_itself() -> None:
    d = Driver()
    d.send({"type": "response.create"})
    out = d.send({"type": "response.cancel"}, {ResponseCancel: False})
    assert types(out) == ["response.done"]
    assert out[0]["response"]["status"] == "cancelled"
    assert out[0]["response"]["output"] == []


def test_barge_in_cancel_reads_turn_detected() -> None:
    d = Driver()
    out = d.pipe(
        ResponseDelta("resp-0", "u1", "So", 0), ResponseDone("resp-0", "u1", "So", cancelled=True)
    )
    assert out[-1]["response"]["status_details"]["reason"] == "turn_detected"


@pytest.mark.parametrize("event_id", [None, "evt_9"])
def test_cancel_with_nothing_active_is_one_error(event_id: str | None) -> None:
    d = Driver()
    event: dict[str, Any] = {"type": "response.cancel"}
    if event_id:
        event["event_id"] = event_id
    out = d.send(event)
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "response_cancel_not_active"
    assert out[0]["error"]["event_id"] == event_id
    d.send({"type": "response.create"})
    out = d.send({"type": "response.cancel", "response_id": "resp_other"})
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "response_cancel_not_active"


@pytest.mark.parametrize(
    "params",
    [
        {"tools": [{"type": "function"}]},
        {"conversation": "none"},
        {"output_modalities": ["audio"]},
        {"input": [{}]},
    ],
)
def test_unsupported_response_parameters(params: dict[str, Any]) -> None:
    d = Driver()
    out = d.send({"type": "response.create", "response": params})
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "unsupported_value"
    assert d.codec.responses.active is None


# -- items -------------------------------------------------------------------------------


def test_text_item_keeps_the_client_id_and_does_not_answer() -> None:
    d = Driver()
    item = {
        "id": "item_client_1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Capital of France?"}],
    }
    out = d.send({"type": "conversation.item.create", "item": item})
    assert types(out) == ["conversation.item.added", "conversation.item.done"]
    assert out[0]["item"]["id"] == "item_client_1"
    assert out[0]["item"]["content"] == item["content"]
    assert d.commands == [AddText("Capital of France?", "user")]
    assert d.codec.responses.active is None


def test_image_item_becomes_an_image_command() -> None:
    d = Driver()
    uri = "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    content = [
        {"type": "input_image", "image_url": uri},
        {"type": "input_text", "text": "What is this?"},
    ]
    out = d.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": content},
        }
    )
    assert d.commands == [ImageIn(JPEG), AddText("What is this?", "user")]
    assert types(out) == ["conversation.item.added", "conversation.item.done"]
    assert out[0]["item"]["id"].startswith("item_")


def test_failed_item_command_is_one_error_and_no_item() -> None:
    d = Driver()
    uri = "data:image/png;base64," + base64.b64encode(b"junk").decode()
    item = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_image", "image_url": uri}],
    }
    out = d.send(
        {"type": "conversation.item.create", "item": item},
        {ImageIn: ProtocolError("invalid_image", "no")},
    )
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "invalid_image"


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "message", "role": "user"}, "item.content"),
        ({"type": "message", "role": "user", "content": []}, "item.content"),
        ({"type": "function_call", "role": "user", "content": []}, "item.type"),
        (
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "x"}],
            },
            "item.role",
        ),
        (
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "audio": "AAAA"}],
            },
            "item.content.type",
        ),
        (
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_image", "image_url": "http://x/y.png"}],
            },
            "item.content.image_url",
        ),
        ("not an object", "item.type"),
    ],
)
def test_malformed_items(item: Any, param: str) -> None:
    d = Driver()
    out = d.send({"type": "conversation.item.create", "event_id": "i1", "item": item})
    assert types(out) == ["error"]
    assert out[0]["error"]["param"] == param
    assert out[0]["error"]["event_id"] == "i1"
    assert d.commands == []


# -- malformed frames --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('{"no": "type"}', "invalid_event"),
        ('{"type": "no_such.event"}', "invalid_event"),
        ('{"type": 5}', "invalid_event"),
        ('{"type": "conversation.item.truncate", "item_id": "x"}', "invalid_value"),
        ('{"type": "output_audio_buffer.clear"}', "unsupported_event"),
        ('{"type": "conversation.item.delete", "item_id": "x"}', "unsupported_event"),
        ('{"type": "conversation.item.retrieve", "item_id": "nope"}', "invalid_value"),
        ('{"type": "session.update", "session": 3}', "invalid_value"),
        ('{"type": "response.create", "response": 3}', "invalid_value"),
    ],
)
def test_malformed_frames_get_one_error_each(frame: str, code: str) -> None:
    d = Driver()
    out = d.send(frame)
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == code
    assert out[0]["error"]["type"] == "invalid_request_error"


def test_oversized_event_is_refused_before_parsing() -> None:
    d = Driver(max_event_bytes=1000)
    out = d.send({"type": "input_audio_buffer.append", "audio": b64(1000)})
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "message_too_large"
    assert RealtimeCodec("x").max_event_bytes >= 1 << 20  # a 1 s append (~64 KB) fits


def test_binary_frames_video_is_the_camera_extension_audio_is_refused() -> None:
    d = Driver()
    assert d.send(encode_video(JPEG, 0, 5)) == []
    assert isinstance(d.commands[-1], VideoFrameIn)
    out = d.send(encode_audio(np.zeros(160, np.float32), 0, 0))
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "invalid_event"
    out = d.send(b"\x00\x01")
    assert types(out) == ["error"]


def test_pipeline_error_is_a_server_error_and_event_ids_are_unique() -> None:
    d = Driver()
    out = d.pipe(ErrorEvent("pipeline_error", "boom"))
    assert out[0]["error"]["type"] == "server_error"
    d.send("{bad")
    d.send({"type": "response.create"})
    ids = [e["event_id"] for e in d.events]
    assert len(ids) == len(set(ids))


def test_session_refusal_of_a_command_is_one_error() -> None:
    d = Driver()
    out = d.send(
        {"type": "input_audio_buffer.append", "event_id": "a1", "audio": b64(100)},
        {AudioAppend: ProtocolError("invalid_state", "the session's pipeline has ended")},
    )
    assert types(out) == ["error"]
    assert out[0]["error"]["event_id"] == "a1"
    assert out[0]["error"]["code"] == "invalid_state"
    out = d.send(
        {"type": "response.create"}, {Respond: ProtocolError("unsupported_event", "no LM")}
    )
    assert types(out) == ["error"]
    assert d.codec.responses.active is None


def test_rate_limit_refusal() -> None:
    d = Driver()
    (event,) = d._take(d.codec.refuse(ProtocolError("rate_limited", "slow down")))
    assert event["error"]["code"] == "rate_limited"
    assert event["error"]["event_id"] is None


def test_retrieve_returns_the_latest_shape_of_an_item() -> None:
    """The Agents SDK retrieves every user audio item once its transcript is complete."""
    d = Driver()
    d.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"transcription": {"model": "x"}}}},
        }
    )
    d.pipe(SpeechStarted("u1", 0), SpeechStopped("u1", 900 * MS))
    item_id = d.events[-1]["item"]["id"]
    d.pipe(TranscriptFinal("u1", " hello there", [], 0, 900 * MS, True))
    out = d.send({"type": "conversation.item.retrieve", "item_id": item_id})
    assert types(out) == ["conversation.item.retrieved"]
    assert out[0]["item"]["content"] == [{"type": "input_audio", "transcript": "hello there"}]
    d.pipe(ResponseDelta("resp-0", "u1", "Hi", 0), ResponseDone("resp-0", "u1", "Hi"))
    answer = d.events[-1]["response"]["output"][0]
    out = d.send({"type": "conversation.item.retrieve", "item_id": answer["id"]})
    assert out[0]["item"] == answer


# -- spoken answers ----------------------------------------------------------------------


def _speaking() -> Driver:
    d = Driver(audio_out=True)
    d.send(
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["audio"]}}
    )
    assert d.commands[-1].audio_out is True
    return d


def test_audio_output_is_refused_when_the_pipeline_cannot_speak() -> None:
    d = Driver(audio_out=False)
    out = d.send(
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["audio"]}}
    )
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "unsupported_value"


def test_spoken_response_lifecycle_audio_at_24k_and_the_transcript_heard() -> None:
    d = _speaking()
    d.send({"type": "response.create"})
    pcm = (np.sin(np.arange(2205) * 2 * np.pi * 440 / 22050) * 8000).astype("<i2").tobytes()
    out = d.pipe(
        ResponseDelta("resp-0", "u1", "Paris is", 0),
        ResponseAudio("resp-0", "u1", 0, 0, 22050, pcm, "Paris"),
        ResponseDelta("resp-0", "u1", " lovely.", 1),
        ResponseDone("resp-0", "u1", "Paris is lovely.", prompt_tokens=9, completion_tokens=3),
        ResponseAudio("resp-0", "u1", 1, 100 * MS, 22050, pcm, "is"),
        ResponseAudio("resp-0", "u1", 2, 200 * MS, 22050, pcm, ""),
        ResponseAudioDone("resp-0", "u1", "Paris is", 300 * MS, 300 * MS),
    )
    kinds = types(out)
    assert "response.output_text.delta" not in kinds  # a spoken answer carries its transcript
    assert kinds[:3] == LIFECYCLE_OPEN
    assert out[2]["part"] == {"type": "audio", "transcript": ""}
    assert kinds[-6:] == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    deltas = [e for e in out if e["type"] == "response.output_audio.delta"]
    samples = sum(len(base64.b64decode(e["delta"])) // 2 for e in deltas)
    assert abs(samples - 3 * 2400) <= 2  # 3 x 100 ms at 24 kHz, the resampler flushed at the end
    words = [e["delta"] for e in out if e["type"] == "response.output_audio_transcript.delta"]
    done = next(e for e in out if e["type"] == "response.output_audio_transcript.done")
    assert "".join(words) == done["transcript"] == "Paris is"
    response = out[-1]["response"]
    assert response["status"] == "completed"
    assert response["output_modalities"] == ["audio"]
    assert response["output"][0]["content"] == [{"type": "output_audio", "transcript": "Paris is"}]
    assert response["usage"]["total_tokens"] == 12


def test_spoken_response_cut_by_barge_in() -> None:
    d = _speaking()
    pcm = bytes(4800)
    out = d.pipe(
        ResponseAudio("resp-0", "u1", 0, 0, 24000, pcm, "Once"),
        ResponseDone("resp-0", "u1", "Once upon a time", cancelled=True),
        ResponseAudioDone("resp-0", "u1", "Once", 100 * MS, 100 * MS, cancelled=True),
    )
    assert types(out)[0] == "response.created"
    response = out[-1]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"]["reason"] == "turn_detected"
    assert response["output"][0]["status"] == "incomplete"


def test_truncating_a_spoken_answer_stops_the_voice() -> None:
    d = _speaking()
    d.send({"type": "response.create"})
    d.pipe(ResponseAudio("resp-0", "u1", 0, 0, 24000, bytes(4800), "Once"))
    item_id = next(e for e in d.events if e["type"] == "response.output_item.added")["item"]["id"]
    event = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
    out = d.send({**event, "audio_end_ms": 60}, {ResponseCancel: True})
    assert types(out) == ["conversation.item.truncated"]
    assert out[0]["audio_end_ms"] == 60
    assert isinstance(d.commands[-1], ResponseCancel)
    out = d.pipe(ResponseAudioDone("resp-0", "u1", "Once", 60 * MS, 60 * MS, cancelled=True))
    assert out[-1]["response"]["status_details"]["reason"] == "client_cancelled"
    bad = d.send({**event, "audio_end_ms": -1})
    assert types(bad) == ["error"]
    assert bad[0]["error"]["param"] == "audio_end_ms"


def test_a_text_item_cannot_be_truncated() -> None:
    d = Driver()
    d.pipe(ResponseDelta("resp-0", "u1", "Hi", 0), ResponseDone("resp-0", "u1", "Hi"))
    item_id = d.events[-1]["response"]["output"][0]["id"]
    out = d.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 5,
        }
    )
    assert types(out) == ["error"]
    assert out[0]["error"]["code"] == "invalid_value"
