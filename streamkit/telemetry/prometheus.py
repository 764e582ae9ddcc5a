"""Server-wide Prometheus metrics folded from every session's registry (pure, no I/O).

Each session keeps its own :class:`~streamkit.core.metrics.MetricsRegistry`. A server-wide view
must outlive sessions and aggregate across them (and across servers), so
:class:`ServerMetrics` *folds* what each registry gained since the last fold into
server-wide series: histograms with fixed buckets (seconds), counters, and the largest gauge
over the live sessions. It folds on every scrape and once more when a session ends.

Naming follows the Prometheus conventions: ``streamkit_`` prefix, base units in the name
(``_seconds``, ``_bytes``; ns values are converted), counters end in ``_total``, every family
has ``# HELP`` and ``# TYPE``, and what varies — the LM backend, the model, the stage, the
edge, the decode kind — is a label with values from a bounded set (the pipeline graph),
never a random session id unless ``session_labels=True`` (debugging only).

Name mapping (session name → family{labels}) is the table :data:`RULES`; names it does not
list fall back to ``streamkit_<name>_seconds`` (histograms), ``_total`` (counters) or the
name (gauges), with any ``_ns``/``_s`` suffix turned into ``_seconds``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from streamkit.core.metrics import MetricsRegistry

__all__ = ["BUCKETS_S", "RULES", "Rule", "ServerMetrics", "family_of"]

BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)
"""Latency buckets (seconds): fine below 1 s, where the turn latencies a user feels live."""

DURATION_BUCKETS_S: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)

Kind = Literal["histogram", "counter", "gauge"]


@dataclass(frozen=True)
class Rule:
    """``pattern`` (full match on a session metric name) → family, help, scale to base unit
    (session histograms hold ns)."""

    kind: Kind
    pattern: str
    family: str
    help: str
    scale: float | None = None
    """Factor to the base unit (None: ns → s for histograms, 1 otherwise)."""

    @property
    def factor(self) -> float:
        if self.scale is not None:
            return self.scale
        return 1e-9 if self.kind == "histogram" else 1.0


RULES: tuple[Rule, ...] = (
    Rule("histogram", r"lm\.(?P<backend>[^.]+)\.eos_to_first_token",
         "streamkit_eos_to_first_token_seconds",
         "End of speech (VAD stop) to the answer's first token, per answered turn."),
    Rule("histogram", r"lm\.(?P<backend>[^.]+)\.ttft", "streamkit_lm_time_to_first_token_seconds",
         "Language-model request to its first streamed token."),
    Rule("histogram", r"lm\.(?P<backend>[^.]+)\.final_to_first_token",
         "streamkit_lm_final_to_first_token_seconds",
         "Final transcript reaching the responder to the answer's first token."),
    Rule("histogram", r"lm\.(?P<backend>[^.]+)\.token_interval",
         "streamkit_lm_token_interval_seconds", "Time between two streamed answer tokens."),
    Rule("histogram", r"model\.(?P<model>[^.]+)\.compute", "streamkit_model_compute_seconds",
         "Compute time of one model call (a Whisper decode, an LM step...)."),
    Rule("histogram", r"model\.(?P<model>[^.]+)\.wait", "streamkit_model_wait_seconds",
         "Time a model call waited for a free worker of the shared model."),
    Rule("histogram", r"stage\.(?P<stage>[^.]+(?:\.[^.]+)?)\.latency",
         "streamkit_stage_latency_seconds", "Time a stage (or inline function) spent per item."),
    Rule("histogram", r"e2e\.(?P<stage>[^.]+)\.(?P<port>[^.]+)", "streamkit_e2e_latency_seconds",
         "Capture time to arrival at a sink's input port."),
    Rule("histogram", r"align\.(?P<stage>[^.]+)\.added_latency",
         "streamkit_align_added_latency_seconds", "Latency the aligner added to a window."),
    Rule("counter", r"ws\.audio\.samples", "streamkit_audio_received_seconds_total",
         "Audio received from clients (seconds at 16 kHz).", 1 / 16_000),
    Rule("counter", r"ws\.bytes_in", "streamkit_audio_received_bytes_total",
         "Bytes of PCM16 audio received from clients."),
    Rule("counter", r"ws\.audio\.lost_chunks", "streamkit_audio_lost_chunks_total",
         "Audio frames a client numbered but never sent (sequence gaps)."),
    Rule("counter", r"ws\.video\.frames", "streamkit_video_frames_total",
         "Video frames received from clients."),
    Rule("counter", r"ws\.video\.dropped", "streamkit_video_dropped_frames_total",
         "Video frames superseded before the pipeline took them (newest wins)."),
    Rule("counter", r"ws\.slow_closes", "streamkit_slow_consumer_closes_total",
         "Sessions closed because the client read too slowly (close code 4003)."),
    Rule("counter", r"ws\.errors\.(?P<code>[a-z_]+)", "streamkit_errors_total",
         "Error events sent to clients, by stable error code."),
    Rule("counter", r"asr\.decodes\.(?P<kind>[a-z]+)", "streamkit_asr_decodes_total",
         "Whisper decodes run, by kind (partial, pause, final)."),
    Rule("counter", r"lm\.(?P<backend>[^.]+)\.prefills", "streamkit_lm_prefills_total",
         "Prompt prefills run ahead of the end of speech."),
    Rule("counter", r"lm\.(?P<backend>[^.]+)\.cancelled", "streamkit_lm_cancelled_total",
         "Answers cancelled (barge-in, a new utterance, the client)."),
    Rule("gauge", r"asr\.lag_s", "streamkit_asr_lag_seconds",
         "Audio received but not yet decoded: the largest over live sessions."),
    Rule("gauge", r"lm\.(?P<backend>[^.]+)\.tokens_per_s", "streamkit_lm_tokens_per_second",
         "Answer generation rate of the last answer: the largest over live sessions."),
)
_COMPILED = [(rule, re.compile(rule.pattern)) for rule in RULES]
_SKIP = re.compile(r"ws\.errors|ws\.audio\.chunks")  # folded into other families


def _sanitize(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


def family_of(kind: Kind, name: str) -> tuple[Rule, dict[str, str]] | None:
    """The family and labels of session metric ``name`` (None: not exported)."""
    if _SKIP.fullmatch(name):
        return None
    for rule, pattern in _COMPILED:
        if rule.kind == kind and (match := pattern.fullmatch(name)):
            return rule, {k: v for k, v in match.groupdict().items() if v is not None}
    base = _sanitize(name)
    scale = 1.0
    for suffix, factor in (("_ns", 1e-9), ("_s", 1.0)):
        if base.endswith(suffix):
            base, scale = base[: -len(suffix)] + "_seconds", factor
            break
    if kind == "histogram":
        return Rule(kind, name, f"streamkit_{base}_seconds", f"Session histogram {name}."), {}
    if kind == "counter":
        return Rule(kind, name, f"streamkit_{base}_total", f"Session counter {name}.", scale), {}
    return Rule(kind, name, f"streamkit_{base}",
                f"Session gauge {name}: the largest over live sessions.", scale), {}


LabelKey = tuple[tuple[str, str], ...]


@dataclass
class _Hist:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe_many(self, values: Iterable[float], count: int, total: float) -> None:
        """Add ``count`` observations summing to ``total``; ``values`` are those of them
        still known one by one (the rest count only in ``+Inf``, ``_count`` and ``_sum``)."""
        for value in values:
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self.counts[i] += 1
        self.count += count
        self.total += total


@dataclass
class _Family:
    kind: Kind
    help: str
    series: dict[LabelKey, float | _Hist] = field(default_factory=dict)


@dataclass
class _Seen:
    """How much of one session's registry is folded already."""

    hist: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    utterances: set[str] = field(default_factory=set)
    answers: set[str] = field(default_factory=set)


def _labels(key: LabelKey, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in key]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class ServerMetrics:
    """Server-wide series (see the module docstring).

    Args:
        session_labels: also export each live session's gauges with a ``session`` label
            (unbounded label values: for debugging only).
    """

    def __init__(self, session_labels: bool = False) -> None:
        self.session_labels = session_labels
        self._families: dict[str, _Family] = {}
        self._seen: dict[str, _Seen] = {}
        self._add("streamkit_sessions_started_total", "counter",
                  "WebSocket sessions accepted since the server started.")
        self._add("streamkit_turns_total", "counter",
                  "Utterances that produced a final transcript, over all sessions.")
        self._add("streamkit_answers_total", "counter",
                  "Answers that finished (or were cancelled), over all sessions.")
        for name in ("streamkit_sessions_started_total", "streamkit_turns_total",
                     "streamkit_answers_total"):
            self._inc(name, (), 0)

    # -- events from the server ----------------------------------------------------------

    def session_started(self) -> None:
        self._inc("streamkit_sessions_started_total", (), 1)

    def session_ended(self, key: str, registry: MetricsRegistry, *, pipeline: str,
                      reason: str, duration_s: float) -> None:
        """Fold the session one last time and count its end."""
        self.fold(key, registry)
        self._seen.pop(key, None)
        self._inc("streamkit_sessions_ended_total", (("pipeline", pipeline), ("reason", reason)),
                  1, help="WebSocket sessions that ended, by pipeline and reason.")
        family = self._add("streamkit_session_duration_seconds", "histogram",
                           "How long sessions lasted.")
        hist = family.series.setdefault((), _Hist(DURATION_BUCKETS_S))
        assert isinstance(hist, _Hist)
        hist.observe_many([duration_s], 1, duration_s)

    def refused(self, status: int) -> None:
        """A handshake refused with HTTP ``status`` (401, 403, 503)."""
        self._inc("streamkit_handshakes_refused_total", (("status", str(status)),), 1,
                  help="WebSocket handshakes refused, by HTTP status (401, 403, 503).")

    # -- folding -------------------------------------------------------------------------

    def fold(self, key: str, registry: MetricsRegistry) -> None:
        """Add what ``registry`` gained since the last fold of session ``key``."""
        seen = self._seen.setdefault(key, _Seen())
        for name, hist in registry.histograms.items():
            new = hist.count - seen.hist.get(name, 0)
            if new <= 0:
                continue
            seen.hist[name] = hist.count
            found = family_of("histogram", name)
            if found is None:
                continue
            rule, labels = found
            family = self._add(rule.family, "histogram", rule.help)
            series = family.series.setdefault(_key(labels), _Hist(BUCKETS_S))
            assert isinstance(series, _Hist)
            values = hist.values()[-new:]
            mean = hist.total / hist.count if hist.count else 0.0
            series.observe_many((v * rule.factor for v in values), new, new * mean * rule.factor)
        for name, counter in registry.counters.items():
            delta = counter.value - seen.counters.get(name, 0)
            if delta <= 0:
                continue
            seen.counters[name] = counter.value
            found = family_of("counter", name)
            if found is not None:
                rule, labels = found
                self._inc(rule.family, _key(labels), delta * rule.factor, help=rule.help)
        for stats in registry.edge_stats():
            delta = stats.dropped - seen.dropped.get(stats.name, 0)
            if delta > 0:
                seen.dropped[stats.name] = stats.dropped
                self._inc("streamkit_edge_dropped_total", (("edge", stats.name),), delta,
                          help="Items a bounded edge dropped by its policy, by edge.")
        for uid, marks in registry.lineage.snapshot().items():
            final = "asr.final" in marks or "sent.transcript.final" in marks
            if final and uid not in seen.utterances:
                seen.utterances.add(uid)
                self._inc("streamkit_turns_total", (), 1)
            answered = "lm.done" in marks or "sent.response.done" in marks
            if answered and uid not in seen.answers:
                seen.answers.add(uid)
                self._inc("streamkit_answers_total", (), 1)

    # -- exposition ----------------------------------------------------------------------

    def render(self, live: Mapping[str, MetricsRegistry]) -> str:
        """Prometheus text (format 0.0.4) after folding every live session."""
        for key, registry in live.items():
            self.fold(key, registry)
        lines: list[str] = []
        for name, family in sorted(self._families.items()):
            lines += [f"# HELP {name} {family.help}", f"# TYPE {name} {family.kind}"]
            for labels, value in sorted(family.series.items()):
                if isinstance(value, _Hist):
                    bounds = [*value.buckets, math.inf]
                    for bound, count in zip(bounds, [*value.counts, value.count], strict=True):
                        le = 'le="' + ("+Inf" if math.isinf(bound) else repr(float(bound))) + '"'
                        lines.append(f"{name}_bucket{_labels(labels, le)} {count}")
                    lines.append(f"{name}_sum{_labels(labels)} {_num(value.total)}")
                    lines.append(f"{name}_count{_labels(labels)} {value.count}")
                else:
                    lines.append(f"{name}{_labels(labels)} {_num(value)}")
        lines += self._gauges(live)
        return "\n".join(lines) + "\n"

    def _gauges(self, live: Mapping[str, MetricsRegistry]) -> list[str]:
        """Live-only series: session count, the largest gauge and edge depth over sessions."""
        values: dict[str, tuple[str, dict[LabelKey, float]]] = {
            "streamkit_sessions": ("Live WebSocket sessions.", {(): float(len(live))}),
        }
        for sid, registry in sorted(live.items()):
            for name, gauge in registry.gauges.items():
                found = family_of("gauge", name)
                if found is None:
                    continue
                rule, labels = found
                if self.session_labels:
                    labels = {**labels, "session": sid}
                series = values.setdefault(rule.family, (rule.help, {}))[1]
                k = _key(labels)
                series[k] = max(series.get(k, -math.inf), gauge.value * rule.factor)
            for stats in registry.edge_stats():
                series = values.setdefault(
                    "streamkit_edge_depth",
                    ("Items queued on a bounded edge: the largest over live sessions.", {}),
                )[1]
                k = (("edge", stats.name),)
                series[k] = max(series.get(k, 0.0), float(stats.depth))
        lines: list[str] = []
        for name, (text, series) in sorted(values.items()):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
            lines += [f"{name}{_labels(k)} {_num(v)}" for k, v in sorted(series.items())]
        return lines

    # -- helpers -------------------------------------------------------------------------

    def _add(self, name: str, kind: Kind, help: str) -> _Family:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = _Family(kind, help)
        return family

    def _inc(self, name: str, key: LabelKey, by: float, help: str = "") -> None:
        family = self._add(name, "counter", help or name)
        current = family.series.get(key, 0.0)
        assert not isinstance(current, _Hist)
        family.series[key] = current + by


def _key(labels: Mapping[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))
