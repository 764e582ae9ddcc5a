"""The client's own bounded buffer of audio not yet answered, for resuming on another worker.

When a worker dies (or drains) mid-turn, the utterance in flight exists only on the client.
:class:`ReplayBuffer` keeps the audio sent since the last *settled* point — the end of the
last utterance whose answer arrived — and gives it back to re-send after a reconnect.
Positions are sample indices on the client's own contiguous sample clock (16 kHz), so no
server clock is involved; :class:`SampleAnchor` maps a server time (the ``end`` of a final
transcript) onto that index for one connection.

Pure: no I/O, no clock. Bounded: at most ``max_samples`` are kept; older audio is dropped
and counted (``dropped``), so a client that never gets answers cannot grow without limit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from streamkit.core.clock import NS_PER_S, Nanos

__all__ = ["ReplayBuffer", "SampleAnchor"]


@dataclass(frozen=True, slots=True)
class SampleAnchor:
    """Where sample ``index`` of the client's stream sits on one server's clock.

    ``server_ns`` is the server's shared-clock time of sample ``index`` (estimated when the
    connection's first frame was sent: local send time + the clock offset − the frame's
    duration, as the server anchors it).
    """

    index: int
    server_ns: Nanos
    sample_rate: int = 16_000

    def to_index(self, server_ns: Nanos) -> int:
        """The sample index a server time corresponds to (rounded down)."""
        return self.index + (server_ns - self.server_ns) * self.sample_rate // NS_PER_S


class ReplayBuffer:
    """Audio from the last settled point on (see the module docstring).

    Args:
        max_samples: the most samples kept (older ones are dropped and counted).
    """

    def __init__(self, max_samples: int = 30 * 16_000) -> None:
        self.max_samples = max_samples
        self.dropped = 0
        self._chunks: deque[tuple[int, npt.NDArray[Any]]] = deque()
        self._size = 0

    def __len__(self) -> int:
        """Samples held."""
        return self._size

    @property
    def start(self) -> int | None:
        """Index of the first sample held (None when empty)."""
        return self._chunks[0][0] if self._chunks else None

    def append(self, index: int, samples: npt.NDArray[Any]) -> None:
        """Keep ``samples`` sent at sample ``index`` (indices must not go backwards)."""
        if len(samples) == 0:
            return
        self._chunks.append((index, samples))
        self._size += len(samples)
        while self._size > self.max_samples and self._chunks:
            _, old = self._chunks.popleft()
            self._size -= len(old)
            self.dropped += len(old)

    def settle(self, until: int) -> None:
        """Forget audio before sample ``until`` (its utterance was answered)."""
        while self._chunks:
            index, chunk = self._chunks[0]
            end = index + len(chunk)
            if end <= until:
                self._chunks.popleft()
                self._size -= len(chunk)
            elif index < until:
                cut = until - index
                self._chunks[0] = (until, chunk[cut:])
                self._size -= cut
                return
            else:
                return

    def pending(self) -> list[tuple[int, npt.NDArray[Any]]]:
        """The chunks to re-send, oldest first (``(index, samples)``; the caller owns them
        read-only: they are the arrays that were sent)."""
        return list(self._chunks)
