"""WsSource timing: client capture times onto the shared clock (ManualClock, no I/O)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from streamkit.core.clock import NS_PER_MS, NS_PER_S, ManualClock
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.transport.protocol import AudioAppend, FrameHeader
from streamkit.transport.ws_source import WsSource

CHUNK = 20 * NS_PER_MS
CLIENT_OFFSET = 1000 * NS_PER_S  # the client's clock reads 1000 s more than ours


def _frame(seq: int, capture: int) -> AudioAppend:
    return AudioAppend(FrameHeader(1, 1, 1, 16000, seq, capture), np.zeros(320, np.float32))


def _pts(source: WsSource) -> list[int]:
    out = []
    while (item := source._audio.get_nowait()) is not None and isinstance(item, Packet):
        out.append(item.pts)
    return out


async def test_audio_is_anchored_once_then_chained_through_backpressure_and_gaps() -> None:
    clock = ManualClock(10 * NS_PER_S)
    source = WsSource(MetricsRegistry(), clock, audio_capacity=1000, video=False)
    start = clock.now()
    # 50 frames at real-time pace, 5 ms network delay each
    for k in range(50):
        clock.set(start + (k + 1) * CHUNK + 5 * NS_PER_MS)
        await source.push_audio(_frame(k, CLIENT_OFFSET + k * CHUNK))
    # the pipeline stalled: the next 50 frames arrive 2 s late, all at once
    clock.set(start + 100 * CHUNK + 2 * NS_PER_S)
    for k in range(50, 100):
        await source.push_audio(_frame(k, CLIENT_OFFSET + k * CHUNK))
    # the client paused its capture for 1 s (its clock says so), then goes on in real time
    for k in range(100, 110):
        capture = CLIENT_OFFSET + k * CHUNK + NS_PER_S
        clock.set(max(clock.now(), start + (k + 1) * CHUNK + NS_PER_S + 5 * NS_PER_MS))
        await source.push_audio(_frame(k, capture))
    pts = _pts(source)
    assert pts[0] == start + 5 * NS_PER_MS  # anchored: capture end = arrival - least delay
    assert all(b - a == CHUNK for a, b in pairwise(pts[:100]))
    hole = pts[100] - (pts[99] + CHUNK)
    assert 0.9 * NS_PER_S <= hole <= 1.1 * NS_PER_S  # the client's own gap is kept
    assert all(b - a == CHUNK for a, b in pairwise(pts[100:]))
    assert source.samples_in == 110 * 320


async def test_lost_frames_are_counted() -> None:
    clock = ManualClock(0)
    metrics = MetricsRegistry()
    source = WsSource(metrics, clock, audio_capacity=100, video=False)
    for seq in (0, 1, 4, 5):
        clock.advance(CHUNK)
        await source.push_audio(_frame(seq, seq * CHUNK))
    assert metrics.counter("ws.audio.lost_chunks").value == 2
