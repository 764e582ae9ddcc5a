"""Mapping a device's clock onto the shared clock: offset and drift, robustly estimated.

A capture device stamps its data on its own clock (``device_ns``: a sample counter turned
into ns, or the driver's ``inputBufferAdcTime``). The host sees each chunk *arrive* at
``shared_ns`` on the shared clock. The relation is::

    shared_ns = device_ns * (1 + drift) + offset + delay,     delay ≥ 0 (jitter, scheduling)

with occasional outliers (a late callback, a stalled thread). :class:`ClockMapper` keeps the
last ``window`` observations and fits the **lower envelope** of that cloud: the line under
which (almost) no arrival lies, i.e. the arrivals that were delayed least. Its slope is the
drift; mapping a device time onto that line gives the earliest time the sample could have
arrived, which is our best estimate of its capture time on the shared clock.

The fit (numpy only, O(window)):

1. work on ``y = shared - device`` against ``x = device - x_ref`` (well-conditioned floats);
2. a robust initial slope: the median of slopes between points half a window apart
   (a Theil–Sen variant for time series; insensitive to up to ~25 % outliers);
3. drop points far *below* that line's least-delayed quarter (an arrival cannot precede its
   capture: those are glitches), then take the lower convex hull of the rest and the hull
   edge above the window's mean device time: the line under every point that minimises the
   summed delay above it (the linear-programming skew estimator of NTP/PTP trace analysis).
   Jitter only ever adds delay, so this line is not biased by it, unlike least squares.

Device clock jumps (a driver restart, a sample counter reset) are detected in
:meth:`ClockMapper.observe`: an observation whose residual from the current fit exceeds
``jump_ns`` (or whose device time goes backwards) is held aside, not used; once
``jump_confirm`` such observations agree with each other, the window is reset to them (the
old fit describes a clock that no longer exists) and :attr:`ClockMapper.resets` is
incremented. A lone late arrival is therefore an outlier, a consistent new relation is a jump.

Pure: no clock reads, no I/O; not thread-safe (call it from the loop thread).
"""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np

from streamkit.core.clock import Nanos

__all__ = ["ClockMapper"]


class ClockMapper:
    """Estimates offset and drift of a device clock relative to the shared clock.

    Args:
        window: number of most recent observations the fit uses (≥ 4).
        min_points: observations needed before :attr:`ready` is true (≥ 2).
        jump_ns: a residual beyond this (either sign) is a candidate clock jump (ns).
        jump_confirm: consecutive mutually consistent candidates that confirm a jump.
        refit_every: refit at most once per this many new observations (a fit is ~O(window)
            numpy plus a short Python hull pass, ~0.1–0.3 ms for 256 points; between refits
            the last line is used — drift is tiny over a few chunks). 1: every observation.
    """

    def __init__(
        self,
        window: int = 256,
        *,
        min_points: int = 8,
        jump_ns: Nanos = 100_000_000,
        jump_confirm: int = 4,
        refit_every: int = 4,
    ) -> None:
        if window < 4:
            raise ValueError(f"window must be ≥ 4, got {window}")
        if not 2 <= min_points <= window:
            raise ValueError(f"min_points must be in [2, window], got {min_points}")
        if jump_ns <= 0 or jump_confirm < 1:
            raise ValueError("jump_ns must be > 0 and jump_confirm ≥ 1")
        self.window = window
        self.min_points = min_points
        self.jump_ns = jump_ns
        self.jump_confirm = jump_confirm
        self.refit_every = max(1, refit_every)
        self._dev: deque[int] = deque(maxlen=window)
        self._shr: deque[int] = deque(maxlen=window)
        self._pending: list[tuple[int, int]] = []
        self._dirty = True
        # Fitted model: shared = dev + base + slope * (dev - ref_x)
        self._ref_x: int = 0
        self._base: float = 0.0
        self._slope: float = 0.0
        self._residual: float = 0.0
        self._fitted_n = 0
        self._since_fit = 0
        self.observed = 0
        """Observations passed to :meth:`observe` (all, including rejected ones)."""
        self.rejected = 0
        """Observations held aside as outliers / jump candidates and not confirmed."""
        self.resets = 0
        """Confirmed device-clock jumps (each reset the fit)."""

    # -- input ---------------------------------------------------------------------------

    def observe(self, device_ns: Nanos, shared_ns: Nanos) -> None:
        """Record that data stamped ``device_ns`` on the device arrived at ``shared_ns``."""
        self.observed += 1
        if len(self._dev) >= self.min_points and not self._consistent(device_ns, shared_ns):
            self._pending.append((device_ns, shared_ns))
            if self._pending_agree():
                self._reset_to_pending()
            elif len(self._pending) > self.jump_confirm:
                self._pending.pop(0)
                self.rejected += 1
            return
        self.rejected += len(self._pending)
        self._pending.clear()
        self._dev.append(device_ns)
        self._shr.append(shared_ns)
        self._since_fit += 1
        self._dirty = True

    def reset(self) -> None:
        """Forget every observation (e.g. the device was reopened)."""
        self._dev.clear()
        self._shr.clear()
        self._pending.clear()
        self._fitted_n = 0
        self._dirty = True

    # -- output --------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once at least ``min_points`` observations span a non-zero device time."""
        return len(self._dev) >= self.min_points and self._dev[-1] != self._dev[0]

    def to_shared(self, device_ns: Nanos) -> Nanos:
        """Map a device timestamp onto the shared clock (ns).

        Before :attr:`ready` the drift is taken as 0 and the offset as the least delay seen.
        Raises ``RuntimeError`` before the first observation.
        """
        self._fit()
        dx = device_ns - self._ref_x
        return device_ns + round(self._base + self._slope * dx)

    @property
    def drift_ppm(self) -> float:
        """Device clock rate error in parts per million (> 0: shared time runs faster)."""
        self._fit()
        return self._slope * 1e6

    @property
    def offset_ns(self) -> Nanos:
        """``to_shared(d) - d`` at ``d = 0``: the offset term of the fitted line (ns)."""
        return self.to_shared(0)

    @property
    def residual_ns(self) -> Nanos:
        """Median delay of the window's arrivals above the fitted envelope (ns): the jitter."""
        self._fit()
        return round(self._residual)

    def __len__(self) -> int:
        return len(self._dev)

    # -- internals -----------------------------------------------------------------------

    def _consistent(self, device_ns: Nanos, shared_ns: Nanos) -> bool:
        if device_ns < self._dev[-1]:
            return False
        self._fit()
        predicted = device_ns + self._base + self._slope * (device_ns - self._ref_x)
        return abs(shared_ns - predicted) <= self.jump_ns

    def _pending_agree(self) -> bool:
        if len(self._pending) < self.jump_confirm:
            return False
        recent = self._pending[-self.jump_confirm :]
        devs = [d for d, _ in recent]
        if any(b < a for a, b in itertools.pairwise(devs)):
            return False
        offsets = [s - d for d, s in recent]
        return max(offsets) - min(offsets) <= self.jump_ns

    def _reset_to_pending(self) -> None:
        recent = self._pending[-self.jump_confirm :]
        self.rejected += len(self._pending) - len(recent)
        self._dev.clear()
        self._shr.clear()
        for d, s in recent:
            self._dev.append(d)
            self._shr.append(s)
        self._pending.clear()
        self.resets += 1
        self._fitted_n = 0
        self._dirty = True

    def _fit(self, *, force: bool = False) -> None:
        if not self._dirty:
            return
        n = len(self._dev)
        if n == 0:
            raise RuntimeError("ClockMapper has no observations yet: call observe() first")
        if not force and self._fitted_n and self._since_fit < self.refit_every:
            return
        ref_x = self._dev[-1]
        dev = np.fromiter(self._dev, dtype=np.int64, count=n)
        y_int = np.fromiter(self._shr, dtype=np.int64, count=n) - dev
        ref_y = int(y_int.min())
        x = (dev - ref_x).astype(np.float64)
        y = (y_int - ref_y).astype(np.float64)
        slope = 0.0
        if n >= self.min_points and dev[-1] != dev[0]:
            slope, base = _envelope_line(x, y, _half_window_slope(x, y))
        else:
            base = float(y.min())
        self._ref_x = ref_x
        self._slope = slope
        self._base = ref_y + base
        self._residual = float(np.median(y - base - slope * x))
        self._fitted_n = n
        self._since_fit = 0
        self._dirty = False


def _envelope_line(x: np.ndarray, y: np.ndarray, slope0: float) -> tuple[float, float]:
    """The lower-envelope line ``y = base + slope * x`` of the cloud (x increasing).

    Points far *below* the robust line of slope ``slope0`` are glitches (an arrival cannot
    precede its capture) and are ignored. Of the remaining points' lower convex hull, the
    edge above the mean ``x`` is the line that lies under every point and minimises the
    summed delay above it (the linear-programming clock-skew estimator used for NTP/PTP
    traces); it is unbiased by jitter, which only ever adds delay.
    """
    resid = y - slope0 * x
    n = len(resid)
    k = max(2, n // 4)
    low = np.partition(resid, k - 1)[:k]
    med = float(np.median(low))
    mad = float(np.median(np.abs(low - med)))
    keep = resid >= med - 8.0 * mad - 1.0  # -1 ns: noiseless data has MAD 0
    # Hull vertices are among the least-delayed points: run the Python hull pass on the
    # lowest eighth only (≥ 16 points), then take the offset over every kept point.
    kept = np.flatnonzero(keep)
    m = min(len(kept), max(16, n // 8))
    cand = np.sort(kept[np.argpartition(resid[kept], m - 1)[:m]]) if m < len(kept) else kept
    xs = x[cand].tolist()
    ys = y[cand].tolist()
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (xs[b] - xs[a]) * (ys[i] - ys[a]) - (ys[b] - ys[a]) * (xs[i] - xs[a])
            if cross > 0:
                break
            hull.pop()
        hull.append(i)
    slope = slope0
    if len(hull) >= 2:
        xm = float(np.mean(x[kept]))
        a, b = hull[-2], hull[-1]
        for a, b in itertools.pairwise(hull):  # noqa: B007 - the loop picks the edge
            if xs[b] >= xm:
                break
        if xs[b] > xs[a]:
            slope = (ys[b] - ys[a]) / (xs[b] - xs[a])
    base = float(np.min(y[kept] - slope * x[kept]))
    return slope, base


def _half_window_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median slope between points ``n // 2`` apart (robust; x must be increasing)."""
    h = len(x) // 2
    dx = x[h:] - x[: len(x) - h]
    dy = y[h:] - y[: len(y) - h]
    ok = dx > 0
    if not ok.any():
        return 0.0
    return float(np.median(dy[ok] / dx[ok]))
