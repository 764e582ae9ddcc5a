"""Per-session rate limits: token buckets refilled by elapsed shared-clock time (pure).

Two uses, one bucket pair each (so one never starves the other):

- **text and video** (``allow``): a message over the rate is *discarded* with a
  ``rate_limited`` error — the flood protection for JSON messages and lossy video;
- **audio** (``delay``): never discarded. A frame over the rate is *paced*: the receive loop
  waits ``delay`` ns before it takes the frame (and reads nothing else meanwhile), so a client
  sending faster than the rate is slowed down by TCP backpressure, like a pipeline that is
  behind slows it down.
"""

from __future__ import annotations

import math

from streamkit.core.clock import NS_PER_S, Nanos
from streamkit.transport.protocol import Limits

__all__ = ["RateLimiter"]


class RateLimiter:
    """Two token buckets (messages and bytes) refilled by elapsed time (pure: pass ``now``)."""

    def __init__(self, limits: Limits, now: Nanos) -> None:
        self._limits = limits
        self._msgs = limits.message_burst
        self._bytes = limits.bytes_burst
        self._last = now

    def _refill(self, now: Nanos) -> None:
        elapsed = max(0, now - self._last) / NS_PER_S
        self._last = max(self._last, now)
        lim = self._limits
        self._msgs = min(lim.message_burst, self._msgs + elapsed * lim.messages_per_s)
        self._bytes = min(lim.bytes_burst, self._bytes + elapsed * lim.bytes_per_s)

    def allow(self, now: Nanos, nbytes: int) -> bool:
        """Take one message of ``nbytes``; False (and nothing taken) when over the rate."""
        self._refill(now)
        if self._msgs < 1 or self._bytes < nbytes:
            return False
        self._msgs -= 1
        self._bytes -= nbytes
        return True

    def delay(self, now: Nanos, nbytes: int) -> Nanos:
        """Take one message of ``nbytes`` now (0), or say how long to wait first (ns > 0,
        nothing taken: call again then). A message larger than the byte burst counts as the
        burst, so every message is eventually taken."""
        self._refill(now)
        lim = self._limits
        nbytes = min(nbytes, int(lim.bytes_burst))
        short_s = max(
            (1 - self._msgs) / lim.messages_per_s if self._msgs < 1 else 0.0,
            (nbytes - self._bytes) / lim.bytes_per_s if self._bytes < nbytes else 0.0,
        )
        if short_s > 0:
            return max(1, math.ceil(short_s * NS_PER_S))
        self._msgs -= 1
        self._bytes -= nbytes
        return 0
