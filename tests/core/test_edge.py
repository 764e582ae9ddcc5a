"""Edges: each overflow policy, close/abandon semantics, controls never dropped, fairness, stats."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.core.edge import Edge, EdgeClosed, Policy
from streamkit.core.packet import EndOfStream, Flush, Gap, Packet

pytestmark = pytest.mark.looptime


def pk(i: int) -> Packet[int]:
    return Packet("a", i, i * 1000, 1000, i)


def drain_now(edge: Edge[int]) -> list[object]:
    out: list[object] = []
    while (item := edge.get_nowait()) is not None:
        out.append(item.payload if isinstance(item, Packet) else item)
        if isinstance(item, EndOfStream):
            break
    return out


async def test_block_waits_for_room_and_counts_it() -> None:
    edge: Edge[int] = Edge("e", 2, Policy.BLOCK)
    await edge.put(pk(0))
    await edge.put(pk(1))
    assert not edge.put_nowait(pk(9))  # full: refused, not counted as a drop
    putter = asyncio.ensure_future(edge.put(pk(2)))
    await asyncio.sleep(1)
    assert not putter.done()
    assert (await edge.get()) == pk(0)
    await putter
    assert drain_now(edge) == [1, 2]
    stats = edge.stats()
    assert (stats.put, stats.got, stats.dropped, stats.blocked, stats.peak) == (3, 3, 0, 1, 2)


async def test_drop_oldest_drop_newest_latest() -> None:
    oldest: Edge[int] = Edge("o", 3, Policy.DROP_OLDEST)
    newest: Edge[int] = Edge("n", 3, Policy.DROP_NEWEST)
    latest: Edge[int] = Edge("l", 8, Policy.LATEST)
    for i in range(6):
        await oldest.put(pk(i))
        await newest.put(pk(i))
        await latest.put(pk(i))
    assert drain_now(oldest) == [3, 4, 5]
    assert drain_now(newest) == [0, 1, 2]
    assert drain_now(latest) == [5]
    assert latest.capacity == 1
    assert [e.stats().dropped for e in (oldest, newest, latest)] == [3, 3, 5]


@pytest.mark.parametrize("policy", list(Policy))
async def test_controls_are_never_dropped_and_keep_order(policy: Policy) -> None:
    edge: Edge[int] = Edge("e", 1, policy)
    edge.put_nowait(pk(0))
    gap, flush = Gap("a", 10, 20), Flush(3, "barge-in")
    assert edge.put_nowait(gap)
    edge.put_nowait(pk(1))  # full: refused / dropped / replaces, depending on policy
    await edge.put(flush)  # never waits, even under BLOCK
    edge.close("boom")
    items = drain_now(edge)
    assert gap in items
    assert flush in items
    assert items.index(gap) < items.index(flush)
    assert items[-1] == EndOfStream("e", "boom")
    assert edge.stats().depth == 0


async def test_close_delivers_queued_items_then_end_forever() -> None:
    edge: Edge[int] = Edge("e", 4)
    for i in range(3):
        await edge.put(pk(i))
    edge.close()
    with pytest.raises(EdgeClosed):
        await edge.put(pk(9))
    got = [item.payload async for item in edge if isinstance(item, Packet)]
    assert got == [0, 1, 2]
    assert await edge.get() == EndOfStream("e")
    assert edge.get_nowait() == EndOfStream("e")
    assert edge.stats().closed


async def test_close_releases_a_blocked_producer_with_edge_closed() -> None:
    edge: Edge[int] = Edge("e", 1)
    await edge.put(pk(0))
    putter = asyncio.ensure_future(edge.put(pk(1)))
    await asyncio.sleep(0.1)
    edge.close()
    with pytest.raises(EdgeClosed):
        await putter


async def test_close_wakes_a_waiting_consumer() -> None:
    edge: Edge[int] = Edge("e", 1)
    getter = asyncio.ensure_future(edge.get())
    await asyncio.sleep(0.1)
    edge.close("upstream failed")
    assert await getter == EndOfStream("e", "upstream failed")


async def test_blocked_producers_are_served_first_come_first_served() -> None:
    edge: Edge[int] = Edge("e", 1)
    await edge.put(pk(0))
    first = asyncio.ensure_future(edge.put(pk(1)))
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(edge.put(pk(2)))
    await asyncio.sleep(0.1)
    assert (await edge.get()).payload == 0  # type: ignore[union-attr]
    # A newcomer cannot barge into the slot just granted to `first`.
    assert not edge.put_nowait(pk(99))
    await first
    assert (await edge.get()).payload == 1  # type: ignore[union-attr]
    await second
    assert drain_now(edge) == [2]


async def test_cancelled_granted_producer_passes_its_slot_on() -> None:
    edge: Edge[int] = Edge("e", 1)
    await edge.put(pk(0))
    first = asyncio.ensure_future(edge.put(pk(1)))
    second = asyncio.ensure_future(edge.put(pk(2)))
    await asyncio.sleep(0.1)
    edge.get_nowait()  # grants the slot to `first` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert drain_now(edge) == [2]


async def test_abandon_releases_producers_and_counts_drops() -> None:
    edge: Edge[int] = Edge("e", 1)
    await edge.put(pk(0))
    putter = asyncio.ensure_future(edge.put(pk(1)))
    await asyncio.sleep(0.1)
    edge.abandon()
    await asyncio.wait_for(putter, 1)
    await edge.put(pk(2))
    assert edge.abandoned
    assert edge.stats().dropped == 3
    assert edge.stats().depth == 0


async def test_second_concurrent_consumer_is_an_error() -> None:
    edge: Edge[int] = Edge("e", 1)
    first = asyncio.ensure_future(edge.get())
    await asyncio.sleep(0.1)
    with pytest.raises(RuntimeError, match="single consumer"):
        await edge.get()
    edge.close()
    await first


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Edge("e", 0)
