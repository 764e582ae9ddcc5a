"""ClockMapper accuracy: error of mapped capture times on generated device/arrival series.

Series: 20 ms device ticks; ``arrival = capture + delay`` with ``capture = device·(1+drift)
+ offset``, delay exponential with mean ``jitter`` plus 5 % late outliers of 20–300 ms.
For each drift in ±200 ppm and each jitter, 20 seeds × 600 observations (window 256); the
error is ``to_shared(device) − capture`` for the newest observation after a 300-point
warm-up (the hardest point: the end of the window). Prints a table, then::

    clockmap: err_p50_us=<n> err_p99_us=<n> drift_err_ppm_p99=<n> fit_us=<n>

for 1 ms mean jitter.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from bench._common import pctl, print_table
from streamkit.core.clockmap import ClockMapper

PERIOD = 20_000_000


def run(drift_ppm: float, jitter_ns: float, seed: int) -> tuple[list[float], float, float]:
    rng = np.random.default_rng(seed)
    mapper = ClockMapper(window=256)
    offset = int(rng.integers(-(10**12), 10**12))
    errors: list[float] = []
    spent = 0
    fits = 0
    for i in range(600):
        device = 10**12 + i * PERIOD
        capture = device + round(device * drift_ppm * 1e-6) + offset
        delay = rng.exponential(jitter_ns) if jitter_ns else 0.0
        if rng.random() < 0.05:
            delay += rng.uniform(20e6, 300e6)
        started = time.perf_counter_ns()
        mapper.observe(device, capture + int(delay))
        mapped = mapper.to_shared(device)
        spent += time.perf_counter_ns() - started
        fits += 1
        if i >= 300:
            errors.append(float(mapped - capture))
    return errors, abs(mapper.drift_ppm - drift_ppm), spent / fits


def main() -> int:
    rows: list[list[object]] = []
    headline = ""
    for jitter in (0.0, 200e3, 1e6, 5e6):
        errs: list[float] = []
        drift_errs: list[float] = []
        costs: list[float] = []
        for drift in (-200.0, -50.0, 0.0, 50.0, 200.0):
            for seed in range(4):
                e, d, c = run(drift, jitter, seed)
                errs.extend(abs(x) for x in e)
                drift_errs.append(d)
                costs.append(c)
        row: list[object] = [
            jitter / 1e3,
            pctl(errs, 50) / 1e3,
            pctl(errs, 99) / 1e3,
            max(errs) / 1e3,
            pctl(drift_errs, 50),
            pctl(drift_errs, 99),
            pctl(costs, 50) / 1e3,
        ]
        rows.append(row)
        if jitter == 1e6:
            headline = (
                f"clockmap: err_p50_us={row[1]:.1f} err_p99_us={row[2]:.1f} "
                f"drift_err_ppm_p99={row[5]:.2f} fit_us={row[6]:.0f}"
            )
    print_table(
        "ClockMapper error at the newest point (drift ±200 ppm, 5 % late outliers, window 256)",
        [
            "jitter mean µs",
            "err p50 µs",
            "err p99 µs",
            "err max µs",
            "drift err p50 ppm",
            "drift err p99 ppm",
            "observe+map µs",
        ],
        rows,
    )
    print(headline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
