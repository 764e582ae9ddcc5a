"""Benchmark: the temporal aligner with 16 kHz audio (20 ms chunks) + 30 fps video.

Part A — core throughput and timestamp error (simulated capture, logical time):
  a microphone whose crystal runs 50 ppm slow delivers 20 ms blocks; each callback arrives
  late by a random scheduling delay (exponential, mean 0.5 ms, plus 1 % spikes of 5–15 ms).
  The mic path's own pieces stamp the audio: :class:`ClockMapper` maps PortAudio-style ADC
  times onto the shared clock and :class:`AudioTimeline` makes contiguous chunks; the error is
  ``chunk pts - true capture time of its first sample`` (after a 1 s warm-up; samples carry
  their index, so the timeline's one-sample slips are accounted for exactly). Video frames
  are stamped at grab with 0–2 ms jitter. :class:`AlignerCore` cuts 100 ms windows; the CPU
  time of its calls gives windows/s.

Part B — added latency of the real stage (real event loop, real time, 3 s): paced synthetic
  sources feed :class:`AlignStage`; added latency = window emission − arrival of the packet
  that completed the window (what the aligner itself adds); "wait" = emission − window end
  (includes waiting for the next video frame, inherent to alignment).

Last line: ``align: windows_per_s=<n> added_latency_p50_us=<n> max_error_ns=<n>``
(max_error_ns: the largest |pts error| of the mapped audio timestamps in part A).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import numpy as np

from bench._common import pctl, print_table
from streamkit import LoopClock, Packet, Pipeline, StageContext
from streamkit.align.core import AlignedWindow, AlignerConfig, AlignerCore
from streamkit.align.stage import AlignStage
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.clockmap import ClockMapper
from streamkit.core.media import AudioChunk, VideoFrame
from streamkit.core.packet import Gap
from streamkit.sources.timeline import AudioTimeline

SECONDS = 300
WINDOW = 100 * NS_PER_MS
DRIFT = -50e-6


def simulate(
    seconds: int,
) -> tuple[list[tuple[Nanos, Packet[Any]]], list[int], list[int], AudioTimeline]:
    """(arrival, packet) for audio + video; audio pts errors; mapper errors (ns); timeline."""
    rng = random.Random(7)
    mapper = ClockMapper()
    timeline = AudioTimeline(16_000)
    t0 = 5 * NS_PER_S  # shared time of the first sample
    dev0 = 1_700_000_000 * NS_PER_S  # the device's clock (e.g. CLOCK_REALTIME)
    block = 20 * NS_PER_MS
    events: list[tuple[Nanos, Packet[Any]]] = []
    errors: list[int] = []
    mapper_errors: list[int] = []
    for b in range(seconds * 50):
        # each sample carries its own index (exact in float32 below 2**24), so the error is
        # measured against the true capture time of the chunk's first sample, slips included
        samples = np.arange(b * 320, (b + 1) * 320, dtype=np.float32)
        adc = dev0 + b * block
        true_start = t0 + round(b * block * (1 + DRIFT))
        latency = 5 * NS_PER_MS
        current = adc + block + latency
        delay = round(rng.expovariate(1 / 0.5) * NS_PER_MS)
        if rng.random() < 0.01:
            delay += rng.randint(5, 15) * NS_PER_MS
        arrival = true_start + round((block + latency) * (1 + DRIFT)) + delay
        mapper.observe(current, arrival)
        estimate = mapper.to_shared(adc)
        if b >= 50:
            mapper_errors.append(estimate - true_start)
        for item in timeline.feed(samples, estimate):
            if isinstance(item, Gap):
                continue
            n = int(item.payload.samples[0])
            true_pts = t0 + round(n * NS_PER_S / 16_000 * (1 + DRIFT))
            if item.pts - t0 > NS_PER_S:
                errors.append(item.pts - true_pts)
            events.append((arrival, item))
    image = np.zeros((2, 2, 3), np.uint8)
    for f in range(seconds * 30):
        grab = t0 + f * NS_PER_S // 30 + rng.randint(0, 2 * NS_PER_MS)
        events.append((grab + NS_PER_MS, Packet("video", f, grab, 0, VideoFrame(image))))
    events.sort(key=lambda e: (e[0], e[1].stream))
    return events, errors, mapper_errors, timeline


def run_core(events: list[tuple[Nanos, Packet[Any]]]) -> tuple[list[AlignedWindow], int]:
    """Drive the core as the stage would (poll at deadlines and after each push)."""
    core = AlignerCore(("audio", "video"), AlignerConfig(window_ns=WINDOW, origin=5 * NS_PER_S))
    windows: list[AlignedWindow] = []
    cpu = 0
    now: Nanos = 0
    for arrival, packet in events:
        started = time.perf_counter_ns()
        while (d := core.next_deadline(now)) is not None and d <= arrival:
            now = max(now, d)
            windows += core.poll(now)
        now = max(now, arrival)
        core.push(packet, now)
        windows += core.poll(now)
        cpu += time.perf_counter_ns() - started
    for name in core.streams:
        core.end(name)
    windows += core.poll(now)
    return windows, cpu


class PacedSource:
    """Synthetic live capture on the real clock: audio chunks at their end, frames at grab."""

    name = "live"
    outputs = ("audio", "video")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.put_at: dict[str, list[tuple[Nanos, Nanos]]] = {"audio": [], "video": []}

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        base = ctx.base_time
        chunk = 20 * NS_PER_MS
        a = v = 0
        samples = np.zeros(320, np.float32)
        image = np.zeros((2, 2, 3), np.uint8)
        while (a + 1) * chunk <= self.seconds * NS_PER_S:
            a_due = base + (a + 1) * chunk
            v_due = base + 7 * NS_PER_MS + v * NS_PER_S // 30  # camera phase: 7 ms
            if a_due <= v_due:
                await ctx.clock.sleep_until(a_due)
                packet: Packet[Any] = Packet("audio", a, a_due - chunk, chunk, AudioChunk(samples))
                a += 1
            else:
                await ctx.clock.sleep_until(v_due)
                packet = Packet("video", v, v_due, 0, VideoFrame(image))
                v += 1
            await ctx.output(packet.stream).put(packet)
            self.put_at[packet.stream].append((ctx.clock.now(), packet.end))


class Windows:
    name = "windows_sink"

    def __init__(self) -> None:
        self.windows: list[AlignedWindow] = []

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        async for item in ctx.input():
            if isinstance(item, Packet):
                self.windows.append(item.payload)


async def run_stage(seconds: float) -> tuple[list[int], list[int]]:
    pipe = Pipeline(LoopClock())
    a, v, w = pipe.edge("a", 16), pipe.edge("v", 16), pipe.edge("w", 16)
    source, sink = PacedSource(seconds), Windows()
    pipe.add(source, outputs={"audio": a, "video": v})
    pipe.add(
        AlignStage(("audio", "video"), AlignerConfig(window_ns=WINDOW)),
        inputs={"audio": a, "video": v},
        outputs={"windows": w},
    )
    pipe.add(sink, inputs={"in": w})
    await pipe.run()
    added: list[int] = []
    wait: list[int] = []
    for window in sink.windows:
        if window.reason != "watermark":
            continue
        done = max(
            min(put for put, end in source.put_at[s] if end >= window.end)
            for s in ("audio", "video")
        )
        added.append(window.emitted_at - done)
        wait.append(window.emitted_at - window.end)
    return added, wait


def main() -> None:
    events, errors, mapper_errors, timeline = simulate(SECONDS)
    mapper_abs = [abs(e) for e in mapper_errors]
    windows, cpu_ns = run_core(events)
    count = sum(w.count for w in windows)
    assert count == len(events), f"aligner lost or duplicated packets: {count} != {len(events)}"
    late = sum(len(w.late) for w in windows)
    windows_per_s = len(windows) / (cpu_ns / NS_PER_S)
    abs_err = [abs(e) for e in errors]
    max_error = max(abs_err)
    added, wait = asyncio.run(run_stage(3.0))
    print_table(
        f"align: {SECONDS} s simulated 16 kHz audio (20 ms) + 30 fps video, 100 ms windows",
        ["metric", "value"],
        [
            ["packets (audio chunks + frames)", len(events)],
            ["windows emitted", len(windows)],
            ["late packets", late],
            ["core CPU per packet (us)", cpu_ns / len(events) / 1e3],
            ["core windows/s (CPU)", round(windows_per_s)],
            ["clock mapper |error| p50 (us)", pctl(mapper_abs, 50) / 1e3],
            ["clock mapper |error| max (us)", max(mapper_abs) / 1e3],
            ["audio pts |error| p50 (us)", pctl(abs_err, 50) / 1e3],
            ["audio pts |error| p99 (us)", pctl(abs_err, 99) / 1e3],
            ["audio pts |error| max (us)", max_error / 1e3],
            ["audio timeline slips / gaps", f"{timeline.slips} / {timeline.gaps}"],
        ],
    )
    print_table(
        "align stage on the real event loop (3 s live, 16 kHz audio + 30 fps video)",
        ["metric", "p50 (us)", "p95 (us)", "max (us)", "windows"],
        [
            [
                "added (emit - completing arrival)",
                pctl(added, 50) / 1e3,
                pctl(added, 95) / 1e3,
                max(added) / 1e3,
                len(added),
            ],
            [
                "wait (emit - window end)",
                pctl(wait, 50) / 1e3,
                pctl(wait, 95) / 1e3,
                max(wait) / 1e3,
                len(wait),
            ],
        ],
    )
    print(
        f"align: windows_per_s={round(windows_per_s)} "
        f"added_latency_p50_us={round(pctl(added, 50) / 1e3)} max_error_ns={max_error}"
    )


if __name__ == "__main__":
    main()
