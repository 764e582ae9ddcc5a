"""The last seconds of one audio stream, by shared-clock time (pure, fixed memory)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_S, Nanos

__all__ = ["AudioTail"]


class AudioTail:
    """A ring of the newest ``seconds`` of contiguous mono audio at ``rate`` Hz.

    ``push(samples, pts)`` appends (a jump in ``pts`` restarts the ring: audio before a hole
    is not contiguous with what follows); ``read(start, end)`` copies the samples between two
    shared-clock times (ns), clipped to what is held. The caller owns the returned array.
    """

    def __init__(self, seconds: float = 8.6, rate: int = 16_000) -> None:
        self.rate = rate
        self._buf = np.zeros(int(seconds * rate), dtype=np.float32)
        self._n = 0  # samples pushed since the ring (re)started
        self._base: Nanos | None = None  # pts of sample 0

    @property
    def end(self) -> Nanos | None:
        """Shared-clock time just after the newest sample (None: empty)."""
        return None if self._base is None else self._base + self._n * NS_PER_S // self.rate

    def push(self, samples: npt.NDArray[np.float32], pts: Nanos) -> None:
        end = self.end
        if end is None or abs(pts - end) > NS_PER_S // 100:
            self._base, self._n = pts, 0
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        size = len(self._buf)
        if len(x) >= size:
            x = x[-size:]
            self._n += len(samples) - size
        at = self._n % size
        first = min(len(x), size - at)
        self._buf[at : at + first] = x[:first]
        self._buf[: len(x) - first] = x[first:]
        self._n += len(x)

    def read(self, start: Nanos, end: Nanos) -> npt.NDArray[np.float32]:
        if self._base is None:
            return np.zeros(0, dtype=np.float32)
        size = len(self._buf)
        lo = max(self._n - size, (start - self._base) * self.rate // NS_PER_S, 0)
        hi = min(self._n, (end - self._base) * self.rate // NS_PER_S)
        if hi <= lo:
            return np.zeros(0, dtype=np.float32)
        index = np.arange(lo, hi) % size
        return self._buf[index].copy()
