"""Each turn as an OpenTelemetry trace, exported over OTLP (or to any SDK span exporter).

Off unless configured: ``streamkit serve --otlp-endpoint http://collector:4318`` builds a
:class:`TraceExporter` with the SDK's OTLP/HTTP exporter behind a batch processor (the SDK's
own thread does the network I/O); tests pass the SDK's ``InMemorySpanExporter``. The
OpenTelemetry SDK is imported when an exporter is built, never on ``import streamkit``.

Times: spans carry the turn's shared-clock marks converted once to Unix time
(``wall_offset_ns`` = Unix time − shared clock, measured when the exporter starts).
"""

from __future__ import annotations

import contextlib
from typing import Any

from streamkit.core.clock import Clock, Nanos, wall_offset
from streamkit.core.edge import Edge
from streamkit.core.packet import EndOfStream, Packet
from streamkit.telemetry.turns import TurnTrace

__all__ = ["TelemetryUnavailable", "TraceExporter"]


class TelemetryUnavailable(RuntimeError):
    """The OpenTelemetry SDK (or its OTLP exporter) is not installed."""


class TraceExporter:
    """Turns :class:`TurnTrace` values into OpenTelemetry spans.

    Args:
        clock: the shared clock (for the Unix-time offset).
        endpoint: an OTLP/HTTP collector base URL (``http://host:4318``); or
        exporter: an SDK ``SpanExporter`` (exported synchronously, for tests).
        service_name: the ``service.name`` resource attribute.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        endpoint: str | None = None,
        exporter: Any = None,
        service_name: str = "streamkit",
    ) -> None:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        except ImportError as error:  # pragma: no cover - part of the deploy extra
            raise TelemetryUnavailable(
                "traces need the OpenTelemetry SDK: pip install 'streamkit[deploy]'"
            ) from error
        self.offset: Nanos = wall_offset(clock)
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if exporter is not None:
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            if endpoint is None:
                raise ValueError("give an OTLP endpoint or an exporter")
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
            except ImportError as error:  # pragma: no cover
                raise TelemetryUnavailable(
                    "OTLP export needs opentelemetry-exporter-otlp-proto-http"
                ) from error
            url = endpoint.rstrip("/")
            if not url.endswith("/v1/traces"):
                url += "/v1/traces"
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self.tracer = self.provider.get_tracer("streamkit.turns")
        self.exported = 0

    def _wall(self, t: Nanos) -> int:
        return t + self.offset

    def export(self, trace: TurnTrace) -> None:
        """Emit one turn: a root span ``turn`` with a child span per phase and an event per
        lineage mark."""
        from opentelemetry import trace as otel

        attributes = {
            "streamkit.session_id": trace.session_id,
            "streamkit.utterance_id": trace.utterance_id,
        }
        root = self.tracer.start_span(
            "turn", start_time=self._wall(trace.root.start), attributes=attributes
        )
        context = otel.set_span_in_context(root)
        for span in trace.spans:
            child = self.tracer.start_span(
                span.name,
                context=context,
                start_time=self._wall(span.start),
                attributes=attributes,
            )
            child.end(end_time=self._wall(span.end))
        for name, t in trace.marks:
            root.add_event(name, timestamp=self._wall(t))
        root.end(end_time=self._wall(trace.root.end))
        self.exported += 1

    def shutdown(self) -> None:
        """Flush what is batched and stop the processor's thread."""
        with contextlib.suppress(Exception):
            self.provider.shutdown()


async def consume(edge: Edge[TurnTrace], exporter: TraceExporter | None) -> None:
    """The worker's telemetry task: every finished turn goes to the trace exporter (when
    configured); returns when the edge is closed."""
    while True:
        item = await edge.get()
        if isinstance(item, EndOfStream):
            return
        if isinstance(item, Packet) and exporter is not None:
            exporter.export(item.payload)
