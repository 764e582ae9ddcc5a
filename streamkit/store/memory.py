"""In-process session store: records survive a reconnect to this worker, not its death."""

from __future__ import annotations

from collections import OrderedDict

from streamkit.core.clock import NS_PER_S, Clock, LoopClock, Nanos
from streamkit.store.backend import SessionRecord

__all__ = ["MemoryStore"]


class MemoryStore:
    """Records in a dict with a TTL on the given clock (bounded: oldest evicted first).

    Args:
        ttl_s: a record expires this long after its last save.
        clock: the clock the TTL is measured on (default: the running loop's).
        max_records: at most this many records are kept.
    """

    name = "memory"

    def __init__(
        self, ttl_s: float = 3600.0, clock: Clock | None = None, max_records: int = 4096
    ) -> None:
        self.ttl_ns: Nanos = round(ttl_s * NS_PER_S)
        self._clock = clock
        self._max = max_records
        self._records: OrderedDict[str, tuple[Nanos, SessionRecord]] = OrderedDict()

    def _now(self) -> Nanos:
        if self._clock is None:
            self._clock = LoopClock()
        return self._clock.now()

    async def load(self, session_id: str) -> SessionRecord | None:
        entry = self._records.get(session_id)
        if entry is None:
            return None
        expires, record = entry
        if self._now() >= expires:
            del self._records[session_id]
            return None
        return record

    async def save(self, record: SessionRecord) -> None:
        self._records.pop(record.session_id, None)
        self._records[record.session_id] = (self._now() + self.ttl_ns, record)
        while len(self._records) > self._max:
            self._records.popitem(last=False)

    async def delete(self, session_id: str) -> None:
        self._records.pop(session_id, None)

    async def aclose(self) -> None:
        self._records.clear()
