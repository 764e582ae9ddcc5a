"""AudioTimeline (pure): contiguous 16 kHz pts that follow noisy, drifting capture estimates."""

from __future__ import annotations

import itertools
import random

import numpy as np

from streamkit.core.clock import NS_PER_MS, NS_PER_S
from streamkit.core.packet import Gap, Packet
from streamkit.sources.timeline import AudioTimeline


def drive(
    rate: int, blocks: int, drift_ppm: float, noise_ms: float, lose: set[int]
) -> tuple[list[Packet[object]], list[Gap], AudioTimeline, list[tuple[int, int]]]:
    rng = random.Random(1)
    tl = AudioTimeline(rate)
    n = rate // 50
    out: list[Packet[object] | Gap] = []
    truth: list[tuple[int, int]] = []  # (16 kHz sample index in emitted audio, true time)
    emitted = 0
    for b in range(blocks):
        true_t = 10 * NS_PER_S + round(b * 20 * NS_PER_MS * (1 + drift_ppm * 1e-6))
        if b in lose:
            continue
        estimate = true_t + round(rng.uniform(0, noise_ms) * NS_PER_MS)
        truth.append((emitted, true_t))
        emitted += 320
        out += tl.feed(np.full(n, b % 7 / 10, np.float32), estimate)
    out += tl.finish()
    packets = [p for p in out if isinstance(p, Packet)]
    gaps = [g for g in out if isinstance(g, Gap)]
    return packets, gaps, tl, truth


def test_contiguous_and_drift_followed() -> None:
    packets, gaps, tl, truth = drive(48_000, 3000, drift_ppm=150, noise_ms=5, lose=set())
    assert gaps == []
    assert all(b.pts == a.end for a, b in itertools.pairwise(packets))
    total = sum(len(p.payload.samples) for p in packets)  # type: ignore[attr-defined]
    assert abs(total - 3000 * 320) <= 320 + tl.slips
    # after a minute of 150 ppm drift (9 ms), pts still track the true capture time
    last_pts = packets[-1].end
    true_end = truth[-1][1] + 20 * NS_PER_MS
    assert abs(last_pts - true_end) < 15 * NS_PER_MS
    assert tl.slips > 0


def test_lost_blocks_become_a_gap() -> None:
    packets, gaps, _, _ = drive(16_000, 200, drift_ppm=0, noise_ms=1, lose=set(range(100, 105)))
    assert len(gaps) == 1
    gap = gaps[0]
    assert abs((gap.end - gap.start) - 100 * NS_PER_MS) < 5 * NS_PER_MS
    breaks = [(a, b) for a, b in itertools.pairwise(packets) if b.pts != a.end]
    assert len(breaks) == 1
    assert breaks[0][0].end == gap.start
    assert breaks[0][1].pts == gap.end
