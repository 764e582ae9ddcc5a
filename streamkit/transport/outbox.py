"""A client's bounded outbox: meaning-bearing events wait, droppable ones coalesce or drop.

:class:`OutboxCore` is pure (no clock, no I/O). Each queued item is an encoded event with its
``type``, an optional coalescing ``key`` and whether it is droppable:

- a droppable item with a ``key`` (``transcript.partial`` of one utterance, ``metrics``)
  *supersedes* a queued item with the same key: the old one is removed (counted as
  ``coalesced``) and the new one appended at the end, so order with finals is kept;
- when the outbox is full, the oldest droppable item is dropped (counted as ``dropped``) to
  make room; if the incoming item is droppable and nothing else can go, it is dropped;
- a meaning-bearing item (final, answer token, error) that finds the outbox full of
  meaning-bearing items is *refused*: the caller waits (:class:`Outbox.put`), which stalls
  only this session's pipeline, and the sender's deadline closes a client that stays stuck.

:class:`Outbox` is the asyncio adapter (single consumer, any number of producers).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

__all__ = ["OutItem", "Outbox", "OutboxClosed", "OutboxCore"]


@dataclass(frozen=True, slots=True)
class OutItem:
    """One encoded event waiting to be sent; ``lineage`` is its utterance id (or None);
    ``binary``: sent as a binary frame (media), else as a text frame (JSON); ``code``: the
    error code of an ``error`` event (counted per code by the session)."""

    type: str
    data: bytes
    droppable: bool = False
    key: str | None = None
    lineage: str | None = None
    binary: bool = False
    code: str | None = None


class OutboxClosed(Exception):
    """The client is gone: nothing more can be queued."""


class OutboxCore:
    """The pure queue policy (see the module docstring). ``capacity`` ≥ 1 items."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"outbox capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[OutItem] = deque()
        self.queued = 0
        self.sent = 0
        self.dropped = 0
        self.coalesced = 0
        self.peak = 0

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: OutItem) -> bool:
        """Queue ``item``; False means refused (full of meaning-bearing items): retry later."""
        if item.droppable and item.key is not None:
            for index, queued in enumerate(self._items):
                if queued.key == item.key:
                    del self._items[index]
                    self.coalesced += 1
                    break
        if len(self._items) >= self.capacity:
            victim = next((i for i, q in enumerate(self._items) if q.droppable), None)
            if victim is not None:
                del self._items[victim]
                self.dropped += 1
            elif item.droppable:
                self.dropped += 1
                return True
            else:
                return False
        self._items.append(item)
        self.queued += 1
        self.peak = max(self.peak, len(self._items))
        return True

    def pop(self) -> OutItem | None:
        """The next item to send, or None."""
        if not self._items:
            return None
        self.sent += 1
        return self._items.popleft()


class Outbox:
    """Asyncio adapter over :class:`OutboxCore`: ``put`` waits for room, ``get`` for items."""

    def __init__(self, capacity: int) -> None:
        self.core = OutboxCore(capacity)
        self._closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, item: OutItem) -> bool:
        """Queue without waiting; False when refused (see :meth:`OutboxCore.offer`)."""
        if self._closed:
            raise OutboxClosed("outbox closed")
        accepted = self.core.offer(item)
        if accepted:
            self._readable.set()
        else:
            self._writable.clear()
        return accepted

    async def put(self, item: OutItem) -> None:
        """Queue ``item``, waiting while the outbox is full of meaning-bearing items."""
        while not self.offer(item):
            await self._writable.wait()
        if self._closed:
            raise OutboxClosed("outbox closed")

    async def get(self) -> OutItem | None:
        """The next item; None once closed and empty."""
        while True:
            item = self.core.pop()
            if item is not None:
                self._writable.set()
                return item
            if self._closed:
                return None
            self._readable.clear()
            await self._readable.wait()

    def close(self) -> None:
        """No more items; waiting producers fail with :class:`OutboxClosed`."""
        self._closed = True
        self._readable.set()
        self._writable.set()
