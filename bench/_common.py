"""Helpers shared by the benchmarks: table printing and percentiles (bench scripts only)."""

from __future__ import annotations

from collections.abc import Sequence

from streamkit.core.metrics import percentile

__all__ = ["pctl", "print_table"]


def pctl(values: Sequence[float], q: float) -> float:
    """Percentile ``q`` (0–100) of unsorted ``values`` (nan when empty)."""
    return percentile(sorted(values), q)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain fixed-width table (machine-agnostic, copy-pastable into notes)."""
    cells = [[str(h) for h in headers]] + [
        [f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(title)
    for index, row in enumerate(cells):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print()
