"""ClockMapper on generated series with known drift (±200 ppm), jitter and outliers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.core.clockmap import ClockMapper


@dataclass(frozen=True)
class Series:
    device: list[int]
    arrival: list[int]
    capture: list[int]  # the true shared-clock time of each device timestamp


def make_series(
    *,
    seed: int,
    n: int,
    drift_ppm: float,
    offset_ns: int,
    period_ns: int = 20_000_000,
    jitter_ns: float = 1_000_000,
    outlier_rate: float = 0.05,
    device_start: int = 0,
) -> Series:
    """``arrival = capture + delay``; ``capture = device * (1 + drift) + offset``.

    ``delay`` is exponential with mean ``jitter_ns`` (never negative) plus, with probability
    ``outlier_rate``, a late outlier of 20–300 ms (a stalled callback).
    """
    rng = np.random.default_rng(seed)
    device = [device_start + i * period_ns for i in range(n)]
    capture = [d + round(d * drift_ppm * 1e-6) + offset_ns for d in device]
    delay = rng.exponential(jitter_ns, n) if jitter_ns > 0 else np.zeros(n)
    late = rng.random(n) < outlier_rate
    delay[late] += rng.uniform(20e6, 300e6, int(late.sum()))
    arrival = [c + int(x) for c, x in zip(capture, delay, strict=True)]
    return Series(device, arrival, capture)


MS = 1_000_000


def _tail_errors(
    mapper: ClockMapper, series_device: list[int], arrival: list[int], capture: list[int], skip: int
) -> list[int]:
    errors = []
    for i, (d, a, c) in enumerate(zip(series_device, arrival, capture, strict=True)):
        mapper.observe(d, a)
        if i >= skip:
            errors.append(mapper.to_shared(d) - c)
    return errors


def test_noiseless_series_is_exact() -> None:
    s = make_series(
        seed=0, n=300, drift_ppm=-173.0, offset_ns=987_654_321_000, jitter_ns=0, outlier_rate=0.0
    )
    m = ClockMapper()
    errors = _tail_errors(m, s.device, s.arrival, s.capture, skip=8)
    assert max(abs(e) for e in errors) <= 2
    assert m.drift_ppm == pytest.approx(-173.0, abs=1e-3)
    assert m.residual_ns <= 1
    assert m.offset_ns == pytest.approx(987_654_321_000, abs=2)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    drift_ppm=st.floats(-200.0, 200.0),
    offset_ns=st.integers(-(10**13), 10**13),
    jitter_ns=st.sampled_from([50_000, 200_000, 1_000_000, 2_000_000]),
    period_ns=st.sampled_from([10 * MS, 20 * MS, 32 * MS]),
    outlier_rate=st.floats(0.0, 0.08),
    device_start=st.integers(0, 10**15),
)
def test_offset_and_drift_under_jitter_and_outliers(
    seed: int,
    drift_ppm: float,
    offset_ns: int,
    jitter_ns: int,
    period_ns: int,
    outlier_rate: float,
    device_start: int,
) -> None:
    s = make_series(
        seed=seed,
        n=400,
        drift_ppm=drift_ppm,
        offset_ns=offset_ns,
        period_ns=period_ns,
        jitter_ns=jitter_ns,
        outlier_rate=outlier_rate,
        device_start=device_start,
    )
    m = ClockMapper(window=256)
    errors = _tail_errors(m, s.device, s.arrival, s.capture, skip=300)
    # The mapped time sits on the lower envelope: never much later than the true capture
    # time and well inside one jitter mean of it (measured max ≈ 0.3 × jitter mean).
    assert max(abs(e) for e in errors) <= 0.6 * jitter_ns
    assert m.drift_ppm == pytest.approx(drift_ppm, abs=80 * jitter_ns / MS)
    assert m.resets == 0
    assert m.ready


def test_not_ready_then_ready_and_errors_before_first_observation() -> None:
    m = ClockMapper(min_points=4)
    with pytest.raises(RuntimeError, match="observe"):
        m.to_shared(0)
    for i in range(3):
        m.observe(i * 20 * MS, i * 20 * MS + 5 * MS)
        assert not m.ready
    assert m.to_shared(100 * MS) == 105 * MS  # drift 0, least delay seen
    m.observe(60 * MS, 65 * MS)
    assert m.ready


def test_lone_late_outliers_do_not_reset() -> None:
    s = make_series(
        seed=3, n=300, drift_ppm=50.0, offset_ns=10**9, jitter_ns=500_000, outlier_rate=0.0
    )
    m = ClockMapper(jump_confirm=4)
    arrival = list(s.arrival)
    for i in (100, 150, 151, 152, 200):  # up to 3 in a row, 2 s late each
        arrival[i] += 2_000_000_000
    errors = _tail_errors(m, s.device, arrival, s.capture, skip=250)
    assert m.resets == 0
    assert m.rejected == 5
    assert max(abs(e) for e in errors) <= 300_000


def test_early_glitch_below_envelope_is_ignored() -> None:
    s = make_series(
        seed=4, n=300, drift_ppm=-120.0, offset_ns=0, jitter_ns=1_000_000, outlier_rate=0.02
    )
    arrival = list(s.arrival)
    arrival[280] -= 40 * MS  # impossible: arrived before it was captured
    m = ClockMapper()
    errors = _tail_errors(m, s.device, arrival, s.capture, skip=282)
    assert max(abs(e) for e in errors) <= 600_000


@pytest.mark.parametrize("jump", ["device_restart", "offset_step"])
def test_device_clock_jump_resets_the_fit(jump: str) -> None:
    before = make_series(
        seed=5, n=300, drift_ppm=80.0, offset_ns=5 * 10**9, jitter_ns=300_000, outlier_rate=0.0
    )
    last_arrival = before.arrival[-1]
    if jump == "device_restart":  # device counter back to zero, shared time goes on
        after = make_series(
            seed=6,
            n=300,
            drift_ppm=80.0,
            offset_ns=last_arrival + 20 * MS,
            jitter_ns=300_000,
            outlier_rate=0.0,
        )
    else:  # same device timeline, shared relation steps by +1.5 s
        after = make_series(
            seed=6,
            n=300,
            drift_ppm=80.0,
            offset_ns=5 * 10**9 + 1_500 * MS,
            jitter_ns=300_000,
            outlier_rate=0.0,
            device_start=before.device[-1] + 20 * MS,
        )
    m = ClockMapper(jump_confirm=4)
    _tail_errors(m, before.device, before.arrival, before.capture, skip=10**9)
    errors = _tail_errors(m, after.device, after.arrival, after.capture, skip=150)
    assert m.resets == 1
    assert max(abs(e) for e in errors) <= 300_000


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="window"):
        ClockMapper(window=2)
    with pytest.raises(ValueError, match="min_points"):
        ClockMapper(window=16, min_points=32)
