"""Where a session's conversation lives between connections: one protocol, engines side by side.

``memory`` keeps records in this process (a session survives a reconnect to the same worker,
not the worker's death); ``redis`` keeps them in Redis with a TTL, so any worker behind a load
balancer can resume a session by id. Importing this package loads no client library;
:func:`open_store` imports the engine a URL names.
"""

from __future__ import annotations

from streamkit.store.backend import (
    SessionRecord,
    SessionStore,
    StoredTurn,
    StoreUnavailable,
    decode_record,
    encode_record,
    open_store,
)
from streamkit.store.memory import MemoryStore

__all__ = [
    "MemoryStore",
    "SessionRecord",
    "SessionStore",
    "StoreUnavailable",
    "StoredTurn",
    "decode_record",
    "encode_record",
    "open_store",
]
