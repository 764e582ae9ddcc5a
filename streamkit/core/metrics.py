"""Metrics taken by the framework at the edges: histograms, counters, gauges, lineage.

All times are ``Nanos`` on the shared clock. Histograms keep a bounded reservoir of the most
recent samples (exact percentiles over that window) plus all-time count/sum/max, so memory is
bounded however long a session runs. :class:`Lineage` follows one utterance across stages
(capture → VAD → partial → final → first LM token → sent) by its id. ``snapshot()`` returns
plain JSON-able data for the WebSocket ``metrics`` event; the server's Prometheus families
are built from those snapshots in :mod:`streamkit.telemetry.prometheus`.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

from streamkit.core.clock import Nanos
from streamkit.core.edge import EdgeStats

__all__ = [
    "Counter",
    "Gauge",
    "Histogram",
    "Lineage",
    "MetricsRegistry",
    "percentile",
]


def percentile(sorted_values: list[int] | list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] of an ascending list (nan if empty)."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    frac = rank - low
    return float(sorted_values[low]) * (1 - frac) + float(sorted_values[high]) * frac


class Histogram:
    """Latency samples in ns: a reservoir of the last ``window`` values plus totals."""

    def __init__(self, name: str, window: int = 4096) -> None:
        self.name = name
        self._recent: deque[int] = deque(maxlen=window)
        self.count = 0
        self.total: int = 0
        self.max: int = 0

    def observe(self, value: Nanos) -> None:
        self._recent.append(value)
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value

    def percentiles(self, *qs: float) -> list[float]:
        ordered = sorted(self._recent)
        return [percentile(ordered, q) for q in qs]

    def values(self) -> list[int]:
        """The samples currently in the window, oldest first."""
        return list(self._recent)

    def summary(self) -> dict[str, float]:
        p50, p95, p99 = self.percentiles(50, 95, 99)
        return {
            "count": self.count,
            "p50_ns": p50,
            "p95_ns": p95,
            "p99_ns": p99,
            "max_ns": float(self.max),
            "mean_ns": self.total / self.count if self.count else math.nan,
        }


class Counter:
    """A monotonically increasing count."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.value = 0

    def inc(self, n: int = 1) -> None:
        self.value += n


class Gauge:
    """A value that goes up and down (e.g. ASR lag in ns)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.value: float = 0.0

    def set(self, value: float) -> None:
        self.value = value


class Lineage:
    """First time each event happened for each utterance id (bounded: oldest forgotten).

    ``mark(uid, "asr.final", t)`` keeps the first ``t`` per (uid, event), so repeated marks
    from repeated partials do not move it.
    """

    def __init__(self, max_utterances: int = 256) -> None:
        self._max = max_utterances
        self._events: OrderedDict[str, dict[str, Nanos]] = OrderedDict()
        self._listeners: list[Callable[[str, str, Nanos], None]] = []

    def listen(self, listener: Callable[[str, str, Nanos], None]) -> None:
        """Call ``listener(uid, event, t)`` on every first mark (synchronously, in the
        marking task: it must be quick and must not raise — hand work to an edge)."""
        self._listeners.append(listener)

    def mark(self, uid: str, event: str, t: Nanos) -> None:
        events = self._events.get(uid)
        if events is None:
            events = {}
            self._events[uid] = events
            while len(self._events) > self._max:
                self._events.popitem(last=False)
        if event in events:
            return
        events[event] = t
        for listener in self._listeners:
            listener(uid, event, t)

    def get(self, uid: str) -> dict[str, Nanos]:
        return dict(self._events.get(uid, {}))

    def ids(self) -> list[str]:
        return list(self._events)

    def snapshot(self) -> dict[str, dict[str, Nanos]]:
        return {uid: dict(ev) for uid, ev in self._events.items()}


class MetricsRegistry:
    """All metrics of one pipeline/session, created on first use by name."""

    def __init__(self) -> None:
        self.histograms: dict[str, Histogram] = {}
        self.counters: dict[str, Counter] = {}
        self.gauges: dict[str, Gauge] = {}
        self.lineage = Lineage()
        self._edge_sources: list[Callable[[], Iterable[EdgeStats]]] = []

    def histogram(self, name: str) -> Histogram:
        hist = self.histograms.get(name)
        if hist is None:
            hist = self.histograms[name] = Histogram(name)
        return hist

    def counter(self, name: str) -> Counter:
        counter = self.counters.get(name)
        if counter is None:
            counter = self.counters[name] = Counter(name)
        return counter

    def gauge(self, name: str) -> Gauge:
        gauge = self.gauges.get(name)
        if gauge is None:
            gauge = self.gauges[name] = Gauge(name)
        return gauge

    def watch_edges(self, source: Callable[[], Iterable[EdgeStats]]) -> None:
        """Include the edge stats returned by ``source`` in every snapshot."""
        self._edge_sources.append(source)

    def edge_stats(self) -> list[EdgeStats]:
        """The current stats of every watched edge."""
        return [stats for source in self._edge_sources for stats in source()]

    def snapshot(self) -> dict[str, Any]:
        """Plain data: histograms (ns), counters, gauges, edges and lineage."""
        edges = [stats for source in self._edge_sources for stats in source()]
        return {
            "histograms": {n: h.summary() for n, h in sorted(self.histograms.items())},
            "counters": {n: c.value for n, c in sorted(self.counters.items())},
            "gauges": {n: g.value for n, g in sorted(self.gauges.items())},
            "edges": {
                e.name: {
                    "depth": e.depth,
                    "peak": e.peak,
                    "capacity": e.capacity,
                    "dropped": e.dropped,
                    "put": e.put,
                    "got": e.got,
                    "blocked": e.blocked,
                    "closed": e.closed,
                    "policy": e.policy,
                }
                for e in edges
            },
            "lineage": self.lineage.snapshot(),
        }

