"""Each turn as an OpenTelemetry trace: the pure span builder, and the SDK's in-memory
exporter on a real session (real server on loopback, Whisper tiny.en + the bundled LM, real
speech)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamkit.core.clock import NS_PER_MS
from streamkit.telemetry.turns import trace_of

MARKS = {
    "asr.vad_start": 100,
    "asr.first_partial": 300,
    "sent.speech.stopped": 1_000,
    "asr.final": 1_200,
    "sent.transcript.final": 1_210,
    "lm.first_token": 1_500,
    "sent.response.delta": 1_520,
    "lm.done": 2_000,
    "sent.response.done": 2_010,
}


def test_a_turn_becomes_a_root_span_with_one_child_per_phase() -> None:
    trace = trace_of("s1", "u1", MARKS)
    assert trace is not None
    assert (trace.root.name, trace.root.start, trace.root.end) == ("turn", 100, 2_010)
    spans = {s.name: (s.start, s.end) for s in trace.spans}
    assert spans == {
        "speech": (100, 1_000),
        "final_transcript": (1_000, 1_200),
        "prompt": (1_200, 1_500),
        "first_token": (1_500, 1_520),
        "answer": (1_500, 2_000),
        "sent": (2_010, 2_010),
    }
    assert next(name for name, _ in trace.marks) == "asr.vad_start"


def test_only_phases_whose_marks_exist_become_spans() -> None:
    trace = trace_of("s1", "u2", {"asr.vad_start": 5, "sent.speech.stopped": 9})
    assert trace is not None
    assert [s.name for s in trace.spans] == ["speech"]
    assert trace_of("s1", "u3", {}) is None
    audio = trace_of("s", "u", {**MARKS, "tts.first_audio": 1_700})
    assert audio is not None
    first_audio = audio.span("first_audio")
    assert first_audio is not None
    assert (first_audio.start, first_audio.end) == (1_000, 1_700)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_real_session_exports_one_trace_per_turn(data_dir: Path) -> None:
    in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    assistant = pytest.importorskip("streamkit.pipelines.assistant")
    from streamkit.core.clock import LoopClock
    from streamkit.core.events import ResponseDone
    from streamkit.sources.media_io import load_audio
    from streamkit.telemetry.otlp import TraceExporter
    from streamkit.transport import Server, ServerOptions, SessionConfig
    from streamkit.transport.client import Client
    from streamkit.transport.deployment import Deployment, DeploymentOptions

    config = assistant.AssistantConfig()
    try:
        models = assistant.Models.load(config)
    except Exception as error:  # pragma: no cover - a missing model package
        pytest.skip(f"models unavailable: {error}")
    if models.lm is not None:
        await models.lm.warmup()

    def factory(source: Any, sink: Any, metrics: Any) -> Any:
        return assistant.build(config, models, source, sink, metrics=metrics)

    spans_out = in_memory.InMemorySpanExporter()
    exporter = TraceExporter(LoopClock(), exporter=spans_out, service_name="streamkit-test")
    deployment = Deployment(DeploymentOptions(exporter=exporter))
    options = ServerOptions(port=0, config=SessionConfig(pipeline="assistant"))
    server = Server({"assistant": factory}, options, deployment=deployment)
    audio = load_audio(data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav")
    async with server.running(), Client.connect(server.url) as client:
        await client.update(pipeline="assistant", metrics_interval_ms=0)
        await client.stream_audio(np.zeros(8000, np.float32))
        await client.stream_audio(audio)
        await client.stream_audio(np.zeros(32000, np.float32))
        tick = np.zeros(8000, np.float32)
        for _ in range(60):
            if client.of_type(ResponseDone):
                break
            await client.stream_audio(tick)
        assert client.of_type(ResponseDone)
        sid = client.created.session_id
        for _ in range(100):  # the telemetry task exports off the media path
            if any(s.name == "turn" for s in spans_out.get_finished_spans()):
                break
            await LoopClock().sleep(20 * NS_PER_MS)
    finished = spans_out.get_finished_spans()
    roots = [s for s in finished if s.name == "turn"]
    assert len(roots) == 1
    root = roots[0]
    assert root.attributes is not None
    assert root.attributes["streamkit.session_id"] == sid
    assert root.resource.attributes["service.name"] == "streamkit-test"
    children = {s.name: s for s in finished if s.parent is not None}
    for name in ("speech", "final_transcript", "prompt", "first_token", "answer", "sent"):
        assert name in children, sorted(children)
        child = children[name]
        assert child.parent is not None
        assert child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
        assert child.start_time is not None
        assert child.end_time is not None
        assert root.start_time is not None
        assert root.end_time is not None
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    event_names = [e.name for e in root.events]
    assert "lm.first_token" in event_names
    assert "sent.response.done" in event_names
    speech, prompt = children["speech"], children["prompt"]
    assert speech.end_time is not None
    assert prompt.start_time is not None
    assert speech.end_time <= prompt.start_time  # the phases follow each other
    exporter.shutdown()


async def test_traces_go_over_otlp_http_to_a_collector_endpoint() -> None:
    """The SDK's real OTLP/HTTP exporter posts protobuf to ``<endpoint>/v1/traces``; a plain
    HTTP server on loopback stands in for the collector and decodes what arrives."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    import asyncio
    import http.server
    import threading

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from streamkit.core.clock import LoopClock
    from streamkit.telemetry.otlp import TraceExporter

    received: list[tuple[str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
        exporter = TraceExporter(LoopClock(), endpoint=endpoint, service_name="otlp-test")
        trace = trace_of("s9", "u9", MARKS)
        assert trace is not None
        exporter.export(trace)
        await asyncio.to_thread(exporter.shutdown)  # flushes the batch processor
    finally:
        collector.shutdown()
        thread.join(5)
    assert received
    path, body = received[0]
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    names = sorted(s.name for s in spans)
    assert names == sorted(["turn", "speech", "final_transcript", "prompt", "first_token",
                            "answer", "sent"])  # fmt: skip
    root = next(s for s in spans if s.name == "turn")
    assert root.end_time_unix_nano - root.start_time_unix_nano == 2_010 - 100
