"""Telemetry for operators: each turn as a trace.

It observes :class:`~streamkit.core.metrics.Lineage` from outside (stages never call it):
:func:`~streamkit.telemetry.turns.trace_of` turns each finished utterance's marks into a
:class:`~streamkit.telemetry.turns.TurnTrace` value, and :mod:`streamkit.telemetry.otlp`
exports those as OpenTelemetry spans (imported only when ``--otlp-endpoint`` is given).
Worker-level Prometheus histograms are :mod:`streamkit.telemetry.prometheus`'s.
"""

from __future__ import annotations

from streamkit.telemetry.turns import Span, TurnTrace, trace_edge, trace_of

__all__ = ["Span", "TurnTrace", "trace_edge", "trace_of"]
