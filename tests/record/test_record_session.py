"""Recorder → MCAP → reader round trip on real media (GRID talking-head clip)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from streamkit.core.events import TranscriptFinal, Word
from streamkit.core.media import AudioChunk, VideoFrame
from streamkit.core.packet import EndOfStream, Packet
from streamkit.core.pipeline import Pipeline
from streamkit.record.assemble import Segment, TimelineSource, assemble
from streamkit.record.mcap import Recorder, SessionWriter, read_session
from streamkit.record.schema import MetricsSample
from streamkit.sources.media_io import load_audio


@pytest.fixture(scope="module")
def grid_packets(data_dir: Path) -> list[Packet[object]]:
    return assemble([Segment(data_dir / "av/grid/bbaf2n.mpg", pause=0.2)], fps=25)


@pytest.mark.looptime
async def test_recorder_stage_round_trip(tmp_path: Path, data_dir: Path, grid_packets) -> None:
    out = tmp_path / "s.mcap"
    pipe = Pipeline()
    audio, video = pipe.edge("audio", 16), pipe.edge("video", 4)
    pipe.add(TimelineSource(grid_packets), outputs={"audio": audio, "video": video})
    pipe.add(Recorder(out), inputs={"audio": audio, "video": video})
    await pipe.run()
    base = pipe.state.base_time
    assert base is not None

    session = read_session(out)
    assert not session.truncated
    assert session.start == base
    got_audio = session.packets("/audio")
    sent_audio = [p for p in grid_packets if p.stream == "audio"]
    assert [p.seq for p in got_audio] == list(range(len(sent_audio)))
    samples = np.concatenate([p.payload.samples for p in got_audio])
    reference = load_audio(data_dir / "av/grid/bbaf2n.mpg")
    assert np.max(np.abs(samples[: len(reference)] - reference)) < 1.0 / 16000  # s16 quantisation
    assert float(np.sqrt(np.mean(reference**2))) > 0.01  # real speech, not silence
    # capture pts AND arrival: publish_time = pts, log_time = when the recorder got it
    for msg in session.messages:
        if isinstance(msg.item, Packet):
            assert msg.publish_time == msg.item.pts
            assert msg.log_time == msg.item.pts + msg.item.duration  # virtual time: no jitter
    frames = session.packets("/video")
    assert len(frames) == len([p for p in grid_packets if p.stream == "video"]) == 80
    first = frames[10].payload
    assert isinstance(first, VideoFrame)
    assert first.image.shape == (288, 360, 3)
    original = next(p for p in grid_packets if p.stream == "video" and p.seq == 10).payload
    err = np.mean(np.abs(first.image.astype(int) - original.image.astype(int)))
    assert err < 4.0  # JPEG q80
    # in-band end of stream for both ports, and a final metrics snapshot with raw samples
    eos = [m.item for m in session.messages if isinstance(m.item, EndOfStream)]
    assert sorted(e.stream for e in eos) == ["audio", "video"]
    final = session.final_metrics()
    assert isinstance(final, MetricsSample)
    assert final.samples is not None
    assert final.snapshot["edges"]["audio"]["put"] == len(sent_audio)


def test_foxglove_schemas_and_summary(tmp_path: Path, grid_packets) -> None:
    out = tmp_path / "s.mcap"
    with SessionWriter(out) as writer:
        for p in grid_packets[:60]:
            writer.write_packet(p, p.pts + p.duration)
        word = Word("bin", 0, 300, 0.9)
        final = TranscriptFinal("u1", "bin blue", [word], 0, 900)
        writer.write_packet(Packet("transcript", 0, 0, 900, final, lineage="u1"), 1_000)
    with open(out, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None
        schemas = {s.name: s for s in summary.schemas.values()}
        assert {"foxglove.RawAudio", "foxglove.CompressedImage", "streamkit.Event"} <= set(schemas)
        for schema in schemas.values():
            assert schema.encoding == "jsonschema"
            assert json.loads(schema.data)["type"] == "object"
        topics = {c.topic: c.message_encoding for c in summary.channels.values()}
        assert topics == {"/audio": "json", "/video": "json", "/transcript": "json"}
        for _schema, _channel, message in reader.iter_messages(topics=["/video"]):
            body = json.loads(message.data)
            assert body["format"] == "jpeg"
            assert body["timestamp"]["sec"] >= 0
            break
    back = read_session(out).packets("/transcript")
    assert back == [Packet("transcript", 0, 0, 900, final, lineage="u1")]


def test_unrecordable_payload_is_a_clear_error(tmp_path: Path) -> None:
    with SessionWriter(tmp_path / "s.mcap") as writer, pytest.raises(TypeError, match="'weird'"):
        writer.write_packet(Packet("weird", 0, 0, 0, object()), 0)


def test_not_an_mcap_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"RIFF0000WAVEfmt ")
    with pytest.raises(ValueError, match="not a readable MCAP"):
        read_session(bad)


def test_audio_chunk_survives_quantisation() -> None:
    from streamkit.record.schema import decode_message, encode_packet

    samples = np.linspace(-1, 1, 320, dtype=np.float32)
    enc = encode_packet(Packet("audio", 3, 10, 20, AudioChunk(samples)))
    back = decode_message(enc.schema, enc.data)
    assert isinstance(back, Packet)
    assert back.seq == 3
    assert np.allclose(back.payload.samples, samples, atol=1 / 32767)


def test_every_event_kind_round_trips(tmp_path: Path, grid_packets) -> None:
    import cv2

    from streamkit.core.events import (
        Detection,
        ErrorEvent,
        Observation,
        ResponseDelta,
        ResponseDone,
        SpeechStarted,
        SpeechStopped,
        TranscriptPartial,
    )
    from streamkit.core.packet import Flush, Gap

    frame = next(p for p in grid_packets if p.stream == "video").payload.image
    jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
    events = [
        Packet("speech", 0, 10, 0, SpeechStarted("u1", 10), lineage="u1"),
        Packet("transcript", 0, 20, 0, TranscriptPartial("u1", "bin", [Word("bin", 10, 20, 0.5)]),
               lineage="u1"),
        Packet("speech", 1, 30, 0, SpeechStopped("u1", 30), lineage="u1"),
        Packet("vision", 0, 40, 0, Observation(40, [Detection("face", 0.9, (1, 2, 3, 4))], 0.1,
                                               0.5, ["cyan"], 360, 288, "1 face", jpeg)),
        Packet("response", 0, 50, 0, ResponseDelta("r1", "u1", "Hi", 0), lineage="u1"),
        Packet("response", 1, 60, 0, ResponseDone("r1", "u1", "Hi.", completion_tokens=2),
               lineage="u1"),
        Packet("error", 0, 70, 0, ErrorEvent("asr.behind", "late")),
        Packet("custom", 0, 80, 0, {"any": ["json", 1]}),
    ]
    with SessionWriter(tmp_path / "e.mcap") as writer:
        for i, p in enumerate(events):
            writer.write_packet(p, 100 + i)
        writer.write_control(Gap("audio", 5, 9, "device"), 200)
        writer.write_control(Flush(3, "barge-in"), 201)
    session = read_session(tmp_path / "e.mcap")
    got = [m.item for m in session.messages if isinstance(m.item, Packet)]
    assert got == events  # bytes (the keyframe JPEG) included
    assert [m.log_time for m in session.messages][:8] == list(range(100, 108))
    controls = [m.item for m in session.messages if m.topic == "/control"]
    assert controls == [Gap("audio", 5, 9, "device"), Flush(3, "barge-in")]
