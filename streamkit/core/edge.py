"""Bounded edges between stages: a channel with a capacity, an overflow policy and stats.

Every queue in streamkit is an :class:`Edge`. Policies (what happens when full):

- ``BLOCK``: ``put`` waits for room (meaning-bearing data: audio into ASR, finals, tokens).
- ``DROP_OLDEST``: the oldest queued packet is discarded and counted.
- ``DROP_NEWEST``: the incoming packet is discarded and counted.
- ``LATEST``: keep only the newest packet (capacity is forced to 1; each one supersedes).

Control events (gap, flush, end of stream) are never dropped and never wait: they are
queued past the capacity so shutdown and flushes cannot deadlock. ``close()`` enqueues an
:class:`~streamkit.core.packet.EndOfStream`; iteration stops after it. ``abandon()`` is the
consumer's side of shutdown: the consumer is gone, so packets are discarded and counted.
Blocked producers are served first-come first-served; a producer arriving while others wait
cannot take the freed slot before them. A single consumer per edge
is assumed; producers may be many. Not thread-safe: from other threads use
``loop.call_soon_threadsafe`` (see the sources).

**Inline consumers** (push mode, as GStreamer's chain functions): a consumer may attach an
:class:`InlineConsumer` to a ``BLOCK`` edge (:meth:`Edge.attach_inline`; an inline
:class:`~streamkit.core.stage.FunctionChain` does). Then ``await put(item)`` on an *empty* edge
whose consumer is idle (``ready()``) and with no producer waiting does not queue: it awaits
``consumer.push(item)``, which runs the consumer's code in the producer's task — a function
call, not an event-loop iteration. Otherwise (items queued, consumer busy, producers
waiting, closed or abandoned) ``put`` queues as usual, so order is kept and the edge stays
bounded. ``put_nowait`` and ``close`` always queue. An inlined item counts as put and got.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from streamkit.core.packet import Control, EndOfStream, Flush, Gap, Packet

__all__ = ["Edge", "EdgeClosed", "EdgeStats", "InlineConsumer", "Policy"]

T = TypeVar("T")


class Policy(enum.Enum):
    """What an edge does with a packet when it is full."""

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    LATEST = "latest"


class EdgeClosed(Exception):
    """Raised by ``put`` on an edge that was closed."""


class InlineConsumer(Protocol):
    """An edge's consumer that can run in the producer's task (see the module docstring)."""

    def ready(self) -> bool:
        """True when an item may be pushed now (the consumer is idle and not failed)."""
        ...

    def push(self, item: Packet[Any] | Control) -> Awaitable[None]:
        """Process ``item`` in the caller's task; must not raise the consumer's own errors."""
        ...


@dataclass(frozen=True, slots=True)
class EdgeStats:
    """A snapshot of one edge's counters."""

    name: str
    capacity: int
    policy: str
    depth: int
    peak: int
    put: int
    got: int
    dropped: int
    blocked: int
    closed: bool


class Edge(Generic[T]):
    """A bounded single-consumer channel of :class:`Packet` and control items.

    Args:
        name: for stats and error messages.
        capacity: maximum number of queued packets (≥ 1; control events do not count).
        policy: overflow policy, see the module docstring.
    """

    def __init__(self, name: str, capacity: int = 8, policy: Policy = Policy.BLOCK) -> None:
        if capacity < 1:
            raise ValueError(f"edge {name!r}: capacity must be ≥ 1, got {capacity}")
        self.name = name
        self.policy = policy
        self.capacity = 1 if policy is Policy.LATEST else capacity
        self._items: deque[Packet[T] | Control] = deque()
        self._packets = 0
        self._closed = False
        self._abandoned = False
        self._reserved = 0  # slots granted to woken producers that have not put yet
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._peak = 0
        self._put = 0
        self._got = 0
        self._dropped = 0
        self._blocked = 0
        self._inline: InlineConsumer | None = None

    def attach_inline(self, consumer: InlineConsumer | None) -> None:
        """Let ``put`` hand items straight to ``consumer`` when the edge is empty (``BLOCK``
        edges only: a drop policy promises a producer that never waits); ``None`` detaches."""
        if consumer is not None and self.policy is not Policy.BLOCK:
            raise ValueError(
                f"edge {self.name!r}: an inline consumer needs a BLOCK edge, "
                f"not {self.policy.value}"
            )
        self._inline = consumer

    # -- producer side -------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Packet[T] | Control) -> bool:
        """Queue ``item`` without waiting. Returns False when a packet was not queued.

        Under ``BLOCK`` a full edge refuses the packet (returns False, counts nothing): the
        caller decides. Under the drop policies the packet (or the oldest) is dropped and
        counted. Control events are always queued. On an abandoned edge (the consumer is
        gone) packets are discarded and counted as dropped.
        """
        if self._closed:
            raise EdgeClosed(f"edge {self.name!r} is closed")
        if self._abandoned:
            if isinstance(item, Packet):
                self._dropped += 1
                return False
            return True
        if not isinstance(item, Packet):
            self._append_control(item)
            return True
        if self._packets + self._reserved >= self.capacity:
            if self.policy is Policy.BLOCK:
                return False
            if self.policy is Policy.DROP_NEWEST or self._packets == 0:
                self._dropped += 1
                return False
            self._drop_oldest_packet()
        self._append_packet(item)
        return True

    async def put(self, item: Packet[T] | Control) -> None:
        """Queue ``item``; under ``BLOCK`` wait (FIFO among producers) while the edge is full.

        Raises :class:`EdgeClosed` if the edge is or gets closed. Cancellation while waiting
        is safe: a slot handed to a cancelled producer passes on to the next one. With an
        inline consumer attached and ready, an empty edge hands ``item`` to it directly.
        """
        inline = self._inline
        if (
            inline is not None
            and not self._items
            and not self._putters
            and not self._reserved
            and not self._closed
            and not self._abandoned
            and inline.ready()
        ):
            if isinstance(item, Packet):
                self._put += 1
                self._got += 1
            await inline.push(item)
            return
        if self.put_nowait(item) or self.policy is not Policy.BLOCK or self._abandoned:
            return
        assert isinstance(item, Packet)  # controls never wait
        self._blocked += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._putters.append(fut)
        try:
            await fut
        except BaseException:
            if fut in self._putters:
                self._putters.remove(fut)
            elif fut.done() and not fut.cancelled() and self._reserved:
                self._reserved -= 1  # granted a slot, then cancelled: pass it on
                self._grant()
            raise
        if self._reserved:
            self._reserved -= 1
        if self._closed:
            raise EdgeClosed(f"edge {self.name!r} closed while waiting to put")
        if self._abandoned:
            self._dropped += 1
            return
        self._append_packet(item)

    def close(self, error: str | None = None) -> None:
        """End the stream in band: the consumer sees every queued item, then the end."""
        if self._closed:
            return
        self._items.append(EndOfStream(self.name, error))
        self._closed = True
        self._wake_getter()
        self._release_putters()

    def abandon(self) -> None:
        """The consumer is gone: discard (and count) further packets, release waiting producers.

        The pipeline calls this on a stage's inputs when the stage returns, so upstream
        producers never wait forever on a consumer that stopped reading.
        """
        if self._abandoned:
            return
        self._abandoned = True
        self._dropped += self._packets
        self._items.clear()
        self._packets = 0
        self._release_putters()

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    # -- consumer side -------------------------------------------------------------------

    async def get(self) -> Packet[T] | Control:
        """Next item; after the end of stream, returns :class:`EndOfStream` forever."""
        while not self._items:
            if self._closed:
                return EndOfStream(self.name)
            if self._getter is not None:
                raise RuntimeError(f"edge {self.name!r} has a single consumer; a second get()")
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getter = fut
            try:
                await fut
            finally:
                self._getter = None
        return self._pop()

    def get_nowait(self) -> Packet[T] | Control | None:
        """Next item, or None when nothing is queued."""
        if not self._items:
            return EndOfStream(self.name) if self._closed else None
        return self._pop()

    def __aiter__(self) -> Edge[T]:
        return self

    async def __anext__(self) -> Packet[T] | Gap | Flush:
        item = await self.get()
        if isinstance(item, EndOfStream):
            raise StopAsyncIteration
        return item

    def stats(self) -> EdgeStats:
        return EdgeStats(
            name=self.name,
            capacity=self.capacity,
            policy=self.policy.value,
            depth=self._packets,
            peak=self._peak,
            put=self._put,
            got=self._got,
            dropped=self._dropped,
            blocked=self._blocked,
            closed=self._closed,
        )

    # -- internals -----------------------------------------------------------------------

    def _append_packet(self, item: Packet[T]) -> None:
        self._items.append(item)
        self._packets += 1
        self._put += 1
        if self._packets > self._peak:
            self._peak = self._packets
        self._wake_getter()

    def _append_control(self, item: Control) -> None:
        self._items.append(item)
        self._wake_getter()

    def _drop_oldest_packet(self) -> None:
        for index, queued in enumerate(self._items):
            if isinstance(queued, Packet):
                del self._items[index]
                self._packets -= 1
                self._dropped += 1
                return

    def _pop(self) -> Packet[T] | Control:
        item = self._items.popleft()
        if isinstance(item, Packet):
            self._packets -= 1
            self._got += 1
            if self._putters:
                self._grant()
        return item

    def _grant(self) -> None:
        """Hand free slots to waiting producers in FIFO order (reserved until they put)."""
        while self._putters and self._packets + self._reserved < self.capacity:
            fut = self._putters.popleft()
            if not fut.done():
                fut.set_result(None)
                self._reserved += 1

    def _release_putters(self) -> None:
        while self._putters:
            fut = self._putters.popleft()
            if not fut.done():
                fut.set_result(None)
        self._reserved = 0

    def _wake_getter(self) -> None:
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)
