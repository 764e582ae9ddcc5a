"""What a session may cost, decided on the session side (pure; no I/O, no clock).

- :class:`Limits`: per-session sizes, rates and deadlines (sent to the client in
  ``session.created``), shared by every codec;
- :func:`json_excess`: the bound on what parsing one JSON text frame may cost (nesting depth,
  number length), checked by every JSON codec before it parses;
- :func:`is_droppable`: whether a slow client may miss an event of a type (decided once, for
  every codec);
- :class:`RateLimiter`: token buckets refilled by elapsed shared-clock time.

The rate limiter has two uses, one bucket pair each (so one never starves the other):

- **text and video** (``allow``): a message over the rate is *discarded* with a
  ``rate_limited`` error — the flood protection for JSON messages and lossy video;
- **audio** (``delay``): never discarded. A frame over the rate is *paced*: the receive loop
  waits ``delay`` ns before it takes the frame (and reads nothing else meanwhile), so a client
  sending faster than the rate is slowed down by TCP backpressure, like a pipeline that is
  behind slows it down.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

import numpy as np

from streamkit.core.clock import NS_PER_S, Nanos

__all__ = ["Limits", "RateLimiter", "is_droppable", "json_excess"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-session limits (bytes, messages per second, milliseconds)."""

    max_text_bytes: int = 16 * 1024
    max_audio_bytes: int = 64 * 1024
    max_video_bytes: int = 1024 * 1024
    max_frame_bytes: int = 2 * 1024 * 1024
    messages_per_s: float = 400.0
    message_burst: float = 800.0
    bytes_per_s: float = 4.0 * 1024 * 1024
    bytes_burst: float = 8.0 * 1024 * 1024
    outbox_capacity: int = 256
    send_deadline_ms: int = 5000
    max_consecutive_errors: int = 0
    """0 = never close for errors (each still gets its ``error`` event)."""
    max_json_depth: int = 16
    """Arrays/objects nested deeper than this in a text frame: ``invalid_json``."""
    max_number_chars: int = 64
    """A JSON number literal longer than this (digits, sign, exponent): ``invalid_json``."""


_DROPPABLE: Final = frozenset({"transcript.partial", "metrics", "vision.observation"})


def is_droppable(event_type: str) -> bool:
    """Whether a slow client may miss events of this type (they are superseded later)."""
    return event_type in _DROPPABLE


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NUMBER = re.compile(rb"[-+0-9.eE]+")
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_excess(raw: bytes, max_depth: int, max_number_chars: int) -> str | None:
    """Why parsing ``raw`` would cost too much (nesting, number length), or None.

    Linear in ``len(raw)``: string literals are blanked first, so brackets and digits inside
    strings do not count; the depth is the running sum of opening minus closing brackets.
    Every JSON codec of the server calls it before parsing (msgspec's parser recurses: about
    980 levels exhaust the stack with a ``RecursionError``).
    """
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets <= max_depth and len(raw) <= max_number_chars:
        return None  # cannot be too deep, cannot hold a too long number
    bare = _STRING.sub(b'""', raw)
    if brackets > max_depth:
        steps = _OPEN[np.frombuffer(bare, np.uint8)].astype(np.int32)
        depth = int(np.cumsum(steps).max(initial=0))
        if depth > max_depth:
            return f"JSON nested {depth} deep > {max_depth}"
    longest = max((len(m) for m in _NUMBER.findall(bare)), default=0)
    if longest > max_number_chars:
        return f"a JSON number of {longest} characters > {max_number_chars}"
    return None


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
