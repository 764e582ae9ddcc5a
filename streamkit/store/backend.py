"""The session-store protocol and the record it stores (frozen msgspec structs).

A :class:`SessionRecord` is everything needed to resume a conversation on another worker:
the settings (the wire config as plain JSON data, so this package imports no transport),
the instructions, the last finished turns and how many answers were ever completed. Turn
times are relative to the session's own origin (ns since the session's pipeline started),
because each worker's shared clock has its own zero.

Ownership: a store never mutates a record; ``save`` replaces the whole record and refreshes
its TTL. What may block: every method awaits I/O (Redis: one round trip); callers run saves
off the media path (the session keeper's own task).
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

__all__ = [
    "SessionRecord",
    "SessionStore",
    "StoreUnavailable",
    "StoredTurn",
    "decode_record",
    "encode_record",
    "open_store",
]


class StoreUnavailable(RuntimeError):
    """The store cannot be used (client library missing, server unreachable); the message
    says what to install or start."""


class StoredTurn(msgspec.Struct, frozen=True):
    """One finished exchange. ``start_ns``/``end_ns``: when the user spoke, ns after the
    session's origin."""

    user: str
    assistant: str
    start_ns: int
    end_ns: int


class SessionRecord(msgspec.Struct, frozen=True):
    """A session's conversation as stored (see the module docstring).

    Attributes:
        session_id: the id the client resumes with.
        config: the session's wire settings (``session.update`` fields) as JSON data.
        instructions: the system instructions, if the client set any.
        turns: the most recent finished turns, oldest first.
        answered: answers completed over the session's life (``len(turns)`` may be fewer).
        age_ns: the session's age (since its origin) when saved.
    """

    session_id: str
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    instructions: str | None = None
    turns: tuple[StoredTurn, ...] = ()
    answered: int = 0
    age_ns: int = 0
    version: int = 1


_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[SessionRecord] = msgspec.json.Decoder(SessionRecord)


def encode_record(record: SessionRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> SessionRecord | None:
    """The record in ``data``, or None when it is not one (a corrupt or foreign value)."""
    try:
        return _decoder.decode(data)
    except msgspec.MsgspecError:
        return None


class SessionStore(Protocol):
    """Where session records live. ``name`` is ``"memory"`` or ``"redis"``."""

    name: str

    async def load(self, session_id: str) -> SessionRecord | None:
        """The record saved for ``session_id``, or None (never saved, expired, corrupt)."""
        ...

    async def save(self, record: SessionRecord) -> None:
        """Replace the record and refresh its TTL. Raises :class:`StoreUnavailable`."""
        ...

    async def delete(self, session_id: str) -> None: ...

    async def aclose(self) -> None: ...


def open_store(url: str | None, ttl_s: float = 3600.0) -> SessionStore:
    """The store a URL names: None or ``memory://`` → in-process; ``redis://host:port/db``
    → Redis (``redis`` package, imported now)."""
    if url is None or url.startswith("memory:"):
        from streamkit.store.memory import MemoryStore

        return MemoryStore(ttl_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from streamkit.store.redis import RedisStore

        return RedisStore(url, ttl_s)
    raise StoreUnavailable(f"unknown session store {url!r} (use redis://host:port/0 or memory://)")
