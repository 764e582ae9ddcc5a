"""Replaying real recorded sessions on virtual time: jitter, VAD turns, lineage, determinism."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamkit.core.clock import NS_PER_MS
from streamkit.core.events import SpeechStarted, SpeechStopped
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage, StageContext
from streamkit.record.mcap import read_session
from streamkit.sources.replay import ReplaySource
from streamkit.testing.replay import TraceSink, replay, run_replay

BUNDLED = Path(__file__).resolve().parents[2] / "streamkit" / "data" / "default_session.mcap"
TURNS = 3  # the bundled session: three spoken turns (see scripts/make_bundled_session.py)


class EnergyVad:
    """A tiny energy VAD stage: audio in, SpeechStarted/SpeechStopped events out (lineage set)."""

    def __init__(self, threshold: float = 0.02, hangover_ms: int = 700) -> None:
        self.name = "vad"
        self.threshold = threshold
        self.hangover = hangover_ms * NS_PER_MS

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output()
        seq = 0
        active: str | None = None
        last_voiced = 0
        async for item in ctx.input("audio"):
            if not isinstance(item, Packet):
                continue
            rms = float(np.sqrt(np.mean(item.payload.samples**2)))
            if rms >= self.threshold:
                last_voiced = item.end
                if active is None:
                    active = f"u{seq}"
                    event = SpeechStarted(active, item.pts)
                    await out.put(Packet("speech", seq, item.pts, 0, event, lineage=active))
                    seq += 1
            elif active is not None and item.end - last_voiced > self.hangover:
                stop = SpeechStopped(active, last_voiced)
                await out.put(Packet("speech", seq, last_voiced, 0, stop, lineage=active))
                seq += 1
                active = None


def vad_factory(source: Stage, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
    pipe = Pipeline(metrics=metrics)
    audio = pipe.edge("audio", 16)
    events = pipe.edge("events", 16)
    pipe.add(source, outputs={"audio": audio})
    pipe.add(EnergyVad(), inputs={"audio": audio}, outputs={"out": events})
    pipe.add(sink, inputs={"in": events})
    return pipe, None


def test_bundled_session_is_small_and_real() -> None:
    assert BUNDLED.stat().st_size < 2_000_000
    session = read_session(BUNDLED)
    assert not session.truncated
    assert {"/audio", "/video"} <= set(session.topics())
    audio = session.packets("/audio")
    assert sum(p.payload.samples.size for p in audio) / 16_000 > 10.0
    # recorded in real time: arrivals jitter after capture
    delays = [m.log_time - (m.item.pts + m.item.duration) for m in session.messages
              if m.topic == "/audio"]
    assert min(delays) >= 0
    assert max(delays) > min(delays)


@pytest.mark.looptime(noop_cycles=1)
async def test_replay_delivers_at_recorded_arrival_times() -> None:
    session = read_session(BUNDLED)
    seen: list[tuple[int, Packet[Any]]] = []

    class Probe:
        name = "probe"

        async def setup(self, ctx: StageContext) -> None:
            return None

        async def run(self, ctx: StageContext) -> None:
            async for item in ctx.input("audio"):
                if isinstance(item, Packet):
                    seen.append((ctx.clock.now() - ctx.base_time, item))

    pipe = Pipeline()
    audio = pipe.edge("audio", 256)
    pipe.add(ReplaySource(session), outputs={"audio": audio})
    pipe.add(Probe(), inputs={"audio": audio})
    await pipe.run()
    base = pipe.state.base_time
    assert base is not None
    recorded = [m for m in session.messages if m.topic == "/audio"]
    assert len(seen) == len(recorded)
    for (t, packet), msg in zip(seen, recorded, strict=True):
        assert abs(t - (msg.log_time - session.start)) <= 1_000  # recorded jitter (looptime: 1 µs)
        assert packet.pts - base == msg.item.pts - session.start
        assert np.array_equal(packet.payload.samples, msg.item.payload.samples)


@pytest.mark.looptime(noop_cycles=1)
async def test_replay_faster_compresses_the_timeline() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    trace = await replay(vad_factory, BUNDLED, speed=4.0)
    elapsed = loop.time() - t0
    session = read_session(BUNDLED)
    span = max(m.log_time for m in session.messages) - session.start
    assert elapsed == pytest.approx(span / 4 / 1e9, abs=0.05)
    starts = trace.payloads(SpeechStarted)
    again = await replay(vad_factory, BUNDLED)
    normal = again.payloads(SpeechStarted)
    # the whole timeline (pts too) is compressed 4×; the VAD's hangover is not, so turns merge
    assert 1 <= len(starts) <= TURNS
    first = starts[0].t - trace.base_time  # payload times are on the run's clock
    assert first == pytest.approx((normal[0].t - again.base_time) / 4, abs=20e6)


def test_run_replay_finds_each_turn_with_complete_lineage() -> None:
    trace = run_replay(vad_factory, BUNDLED)
    starts = trace.payloads(SpeechStarted)
    stops = trace.payloads(SpeechStopped)
    assert len(starts) == len(stops) == TURNS
    # turn 1 begins after the 0.6 s lead-in of the GRID clip; turns are seconds apart
    assert 0.6e9 < starts[0].t < 2.0e9
    assert all(b.t - a.t > 1e9 for a, b in zip(stops, starts[1:], strict=False))
    for start, stop in zip(starts, stops, strict=True):
        assert start.utterance_id == stop.utterance_id
        assert 0.8e9 < stop.t - start.t < 3.5e9  # GRID sentences / "go forward ten meters"
        marks = trace.lineage[start.utterance_id]
        assert set(marks) == {"vad.out"}
    e2e = trace.metrics["histograms"]["e2e.vad.out"]
    assert e2e["count"] == 2 * TURNS
    assert trace.duration > 10e9  # the whole session was played, in virtual time


def test_replay_traces_are_identical_run_after_run() -> None:
    first = run_replay(vad_factory, BUNDLED)
    second = run_replay(vad_factory, BUNDLED)
    assert first.events
    assert first.to_json() == second.to_json()


def test_trace_sink_is_a_stage() -> None:
    assert isinstance(TraceSink(), Stage)


def test_missing_session_is_a_clear_error(tmp_path: Path) -> None:
    from streamkit.core.pipeline import StageFailed

    with pytest.raises(StageFailed, match="no session file"):
        run_replay(vad_factory, tmp_path / "missing.mcap")


def test_replay_source_offers_only_recorded_ports(tmp_path: Path, data_dir: Path) -> None:
    from streamkit.record.assemble import Segment, assemble
    from streamkit.record.mcap import SessionWriter

    packets = assemble([Segment(data_dir / "speech/utterances/jfk/jfk.wav", pause=0.0)])
    assert {p.stream for p in packets} == {"audio"}
    path = tmp_path / "audio_only.mcap"
    with SessionWriter(path) as writer:
        for p in packets:
            writer.write_packet(p, p.pts + p.duration)
    assert ReplaySource(path).outputs == ("audio",)
    assert ReplaySource(BUNDLED).outputs == ("audio", "video")
    trace = run_replay(vad_factory, path)
    assert len(trace.payloads(SpeechStarted)) >= 1  # "And so my fellow Americans …"
