"""Latency summaries from a metrics snapshot: rows for the HUD, the terminal and reports.

Pure functions over :meth:`streamkit.core.metrics.MetricsRegistry.snapshot` data (ns in, ms out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.table import Table

__all__ = ["LatencyRow", "latency_rows", "latency_table", "lineage_rows"]


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """One histogram: ``name`` (e.g. ``stage.asr.latency``), count and ms percentiles."""

    name: str
    count: int
    p50_ms: float
    p95_ms: float
    max_ms: float

    @property
    def label(self) -> str:
        """Short label: ``stage.asr.latency`` → ``asr``, ``e2e.asr.out`` → ``e2e asr.out``."""
        parts = self.name.split(".")
        if parts[0] == "stage" and parts[-1] == "latency":
            return ".".join(parts[1:-1])
        if parts[0] == "e2e":
            return "e2e " + ".".join(parts[1:])
        return self.name


def _ms(ns: float) -> float:
    return math.nan if ns is None or math.isnan(ns) else ns / 1e6


def latency_rows(
    snapshot: dict[str, Any], prefixes: tuple[str, ...] = ("stage.", "e2e.", "model.", "lm.")
) -> list[LatencyRow]:
    """Histograms whose names start with ``prefixes``, stage rows first, then e2e, then model."""
    rows = []
    for name, h in snapshot.get("histograms", {}).items():
        if not name.startswith(prefixes) or not h.get("count"):
            continue
        rows.append(
            LatencyRow(name, int(h["count"]), _ms(h["p50_ns"]), _ms(h["p95_ns"]), _ms(h["max_ns"]))
        )
    order = {p: i for i, p in enumerate(prefixes)}
    rows.sort(key=lambda r: (min(order[p] for p in prefixes if r.name.startswith(p)), r.name))
    return rows


def lineage_rows(lineage: dict[str, dict[str, int]]) -> list[tuple[str, list[tuple[str, float]]]]:
    """Per utterance: its events in time order as (event, ms after the utterance's first mark)."""
    rows = []
    for uid, marks in lineage.items():
        if not marks:
            continue
        t0 = min(marks.values())
        events = sorted(marks.items(), key=lambda kv: kv[1])
        rows.append((uid, [(ev, (t - t0) / 1e6) for ev, t in events]))
    return rows


def latency_table(snapshot: dict[str, Any], title: str = "latency (ms)") -> Table:
    """A rich table of :func:`latency_rows`."""
    table = Table(title=title, title_justify="left", expand=False)
    for col in ("stage / path", "n", "p50", "p95", "max"):
        table.add_column(col, justify="left" if col.startswith("stage") else "right")
    for row in latency_rows(snapshot):
        table.add_row(
            row.label, str(row.count), f"{row.p50_ms:.1f}", f"{row.p95_ms:.1f}", f"{row.max_ms:.1f}"
        )
    return table
