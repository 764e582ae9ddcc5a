"""Per-session rate limits: token buckets refilled by elapsed shared-clock time (pure)."""

from __future__ import annotations

from streamkit.clock import NS_PER_S, Nanos
from streamkit.transport.protocol import Limits

__all__ = ["RateLimiter"]


class RateLimiter:
    """Two token buckets (messages and bytes) refilled by elapsed time (pure: pass ``now``)."""

    def __init__(self, limits: Limits, now: Nanos) -> None:
        self._limits = limits
        self._msgs = limits.message_burst
        self._bytes = limits.bytes_burst
        self._last = now

    def allow(self, now: Nanos, nbytes: int) -> bool:
        """Take one message of ``nbytes``; False (and nothing taken) when over the rate."""
        elapsed = max(0, now - self._last) / NS_PER_S
        self._last = now
        lim = self._limits
        self._msgs = min(lim.message_burst, self._msgs + elapsed * lim.messages_per_s)
        self._bytes = min(lim.bytes_burst, self._bytes + elapsed * lim.bytes_per_s)
        if self._msgs < 1 or self._bytes < nbytes:
            return False
        self._msgs -= 1
        self._bytes -= nbytes
        return True
