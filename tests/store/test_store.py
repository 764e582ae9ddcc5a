"""Session stores: the in-process one on a manual clock, the Redis one against redis-server."""

from __future__ import annotations

import pytest

from streamkit.core.clock import NS_PER_S, ManualClock
from streamkit.store import (
    MemoryStore,
    SessionRecord,
    StoredTurn,
    StoreUnavailable,
    decode_record,
    encode_record,
    open_store,
)
from streamkit.store.redis import RedisStore

RECORD = SessionRecord(
    "abc123",
    config={"pipeline": "assistant", "partials": False},
    instructions="be brief",
    turns=(StoredTurn("hello", "hi there", 1_000, 2_000), StoredTurn("and you", "fine", 3, 4)),
    answered=5,
    age_ns=9 * NS_PER_S,
)


def test_record_round_trips_and_garbage_is_none() -> None:
    assert decode_record(encode_record(RECORD)) == RECORD
    assert decode_record(b"not json") is None
    assert decode_record(b'{"turns": 3}') is None


async def test_memory_store_expires_records_on_its_clock() -> None:
    clock = ManualClock()
    store = MemoryStore(ttl_s=10, clock=clock)
    await store.save(RECORD)
    clock.advance(9 * NS_PER_S)
    assert await store.load("abc123") == RECORD
    await store.save(RECORD)  # a save refreshes the TTL
    clock.advance(9 * NS_PER_S)
    assert await store.load("abc123") == RECORD
    clock.advance(2 * NS_PER_S)
    assert await store.load("abc123") is None
    assert await store.load("nobody") is None


async def test_memory_store_is_bounded() -> None:
    store = MemoryStore(clock=ManualClock(), max_records=2)
    for sid in ("a", "b", "c"):
        await store.save(SessionRecord(sid))
    assert await store.load("a") is None
    assert (await store.load("c")) == SessionRecord("c")


def test_open_store_by_url() -> None:
    assert open_store(None).name == "memory"
    assert open_store("memory://").name == "memory"
    assert open_store("redis://127.0.0.1:1/0").name == "redis"
    with pytest.raises(StoreUnavailable, match="unknown session store"):
        open_store("mongodb://x")


async def test_redis_store_saves_loads_expires_and_deletes(redis_url: str) -> None:
    store = RedisStore(redis_url, ttl_s=1, prefix="test:")
    try:
        await store.ping()
        await store.save(RECORD)
        assert await store.load("abc123") == RECORD
        ttl = await store._client.ttl("test:abc123")
        assert 0 < ttl <= 1
        other = RedisStore(redis_url, prefix="test:")  # a second worker sees the same record
        assert await other.load("abc123") == RECORD
        await other.aclose()
        await store.delete("abc123")
        assert await store.load("abc123") is None
        await store._client.set("test:junk", b"{oops")
        assert await store.load("junk") is None
    finally:
        await store.aclose()


async def test_redis_store_down_raises_store_unavailable() -> None:
    from tests.store.conftest import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    try:
        with pytest.raises(StoreUnavailable, match="Redis at"):
            await store.save(RECORD)
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.aclose()
