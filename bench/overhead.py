"""Framework overhead: 20 ms audio packets through 1, 5 and 10 pass-through stages.

Workload (issue 2, item 8): packets of 20 ms of 16 kHz mono int16 (640 bytes of PCM) flow
source → N pass-through stages → sink.

- **packets/s**: the source puts packets as fast as the edges accept them; from the first
  put to the sink receiving the last packet, in wall time and in process CPU time.
- **added latency** (p50/p99): one packet every 20 ms (real-time pace, one in flight); time
  from the source handing the packet to the framework to the sink's code seeing it.

streamkit is measured three ways, all with the public API:

- ``fused``: ``chain(name, *function_stages)`` as a user gets it by default (the N
  synchronous function stages in one task behind its input edge) and a sink task: two
  bounded edge hops in all.
- ``tasks``: one task per function stage (N + 1 bounded edge hops) and a sink task.
- ``inline``: ``chain(..., inline=True)`` and the sink a function stage
  ``function_stage("sink", record, inline=True)`` (push mode, see :mod:`streamkit.core.stage`):
  the source's ``put`` runs the chain and the sink in the source's task, so there is no
  queue hop at all; both edges are still there, bounded (backpressure: the source's put
  awaits a full edge).

Every edge is bounded (capacity 32, BLOCK) and the
framework's own metrics stay on (stage latency and end-to-end histograms on every packet,
per-function histograms sampled 1 in 8). A bare chain of N + 1 bounded ``asyncio.Queue`` hops
(no framework) is measured in the same run as the machine's floor. Throughput is the best of
``--repeat`` runs (shared machines are noisy); latency comes from one paced run.
Pipecat 1.14 runs the same workload in a subprocess of ``.venv-bench`` (its pins conflict
with ours: soundfile, soxr, protobuf) via ``bench/_pipecat_overhead.py``.

Usage: ``python bench/overhead.py [--packets N] [--paced N] [--no-pipecat]``. Prints a table,
then as the last line::

    overhead: streamkit_pps=<n> pipecat_pps=<n> ratio=<x> added_latency_p50_us=<n>

(5 stages; streamkit numbers from ``inline``, ``chain(..., inline=True)``: the configuration
streamkit offers for synchronous pass-through stages — the default ``fused`` and one task per
stage are in the table beside it.) The packets/s in that line are per CPU
second of the process (``time.process_time``) from the first put to the last arrival: the
same as wall-clock packets/s on an idle core (asyncio runs on one thread), but not skewed
by other processes on a shared machine, where the two frameworks' runs would otherwise see
different load. The table shows both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import pctl, print_table
from streamkit.core.clock import NS_PER_MS, LoopClock
from streamkit.core.function_stage import chain, function_stage
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage, StageContext

ROOT = Path(__file__).resolve().parent.parent
STAGES = (1, 5, 10)
CAPACITY = 32
AUDIO = bytes(640)  # 20 ms of 16 kHz mono int16
WARMUP = 10


@dataclass
class _Run:
    sends: list[int]  # perf_counter_ns at each source put
    arrivals: list[int]  # perf_counter_ns at each sink arrival
    cpu_ns: int  # process CPU time from the first put to the last arrival


class _Source:
    name = "source"

    def __init__(self, count: int, paced: bool) -> None:
        from streamkit.core.packet import Packet

        self.packets = [
            Packet("audio", i, i * 20 * NS_PER_MS, 20 * NS_PER_MS, AUDIO) for i in range(count)
        ]
        self.paced = paced
        self.sends: list[int] = []
        self.cpu_start = 0

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        out = ctx.output()
        sends = self.sends
        anchor = ctx.clock.now()
        for i, packet in enumerate(self.packets):
            if self.paced:
                await ctx.clock.sleep_until(anchor + i * 20 * NS_PER_MS)
            if i == 0:
                self.cpu_start = time.process_time_ns()
            sends.append(time.perf_counter_ns())
            await out.put(packet)


class _Sink:
    name = "sink"

    def __init__(self) -> None:
        self.arrivals: list[int] = []
        self.cpu_end = 0

    async def setup(self, ctx: StageContext) -> None:
        return None

    async def run(self, ctx: StageContext) -> None:
        arrivals = self.arrivals
        async for _item in ctx.input():
            arrivals.append(time.perf_counter_ns())
        self.cpu_end = time.process_time_ns()


def _passthrough(packet: Any) -> Any:
    return packet


class _SinkFn:
    """The ``inline`` sink's function: records the arrival, returns nothing."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.arrivals: list[int] = []
        self.cpu_end = 0

    def __call__(self, packet: Any) -> None:
        arrivals = self.arrivals
        arrivals.append(time.perf_counter_ns())
        if len(arrivals) == self.count:
            self.cpu_end = time.process_time_ns()


async def _streamkit(stages: int, mode: str, count: int, paced: bool) -> _Run:
    pipe = Pipeline(LoopClock())
    source = _Source(count, paced)
    first = pipe.edge("e0", CAPACITY)
    pipe.add(source, outputs={"out": first})
    fns = [function_stage(f"f{i}", _passthrough) for i in range(stages)]
    middle: list[Stage] = (
        fns if mode == "tasks" else [chain("chain", *fns, inline=mode == "inline")]
    )
    prev = first
    for index, stage in enumerate(middle):
        edge = pipe.edge(f"e{index + 1}", CAPACITY)
        pipe.add(stage, {"in": prev}, {"out": edge})
        prev = edge
    if mode == "inline":
        record = _SinkFn(count)
        pipe.add(function_stage("sink", record, inline=True), {"in": prev})
        await pipe.run()
        arrivals, cpu_end = record.arrivals, record.cpu_end
    else:
        sink = _Sink()
        pipe.add(sink, {"in": prev})
        await pipe.run()
        arrivals, cpu_end = sink.arrivals, sink.cpu_end
    assert len(arrivals) == count
    return _Run(source.sends, arrivals, cpu_end - source.cpu_start)


async def _bare(stages: int, count: int, paced: bool) -> _Run:
    """Reference floor: N + 1 hops through plain bounded ``asyncio.Queue`` s, no framework."""
    queues: list[asyncio.Queue[object]] = [asyncio.Queue(CAPACITY) for _ in range(stages + 1)]
    sends: list[int] = []
    arrivals: list[int] = []
    cpu = [0, 0]

    async def hop(index: int) -> None:
        inbox = queues[index]
        outbox = queues[index + 1] if index < stages else None
        while (item := await inbox.get()) is not None:
            if outbox is None:
                arrivals.append(time.perf_counter_ns())
                cpu[1] = time.process_time_ns()
            else:
                await outbox.put(item)
        if outbox is not None:
            await outbox.put(None)

    clock = LoopClock()
    async with asyncio.TaskGroup() as group:
        for index in range(stages + 1):
            group.create_task(hop(index))
        anchor = clock.now()
        for i in range(count):
            if paced:
                await clock.sleep_until(anchor + i * 20 * NS_PER_MS)
            if i == 0:
                cpu[0] = time.process_time_ns()
            sends.append(time.perf_counter_ns())
            await queues[0].put(AUDIO)
        await queues[0].put(None)
    return _Run(sends, arrivals, cpu[1] - cpu[0])


def measure_row(
    stages: int, mode: str, count: int, paced_count: int, repeat: int
) -> dict[str, float]:
    """Best-of-``repeat`` packets/s (wall and per CPU second), then one paced latency run."""

    def run(n: int, paced: bool) -> _Run:
        if mode == "bare":
            return asyncio.run(_bare(stages, n, paced))
        return asyncio.run(_streamkit(stages, mode, n, paced))

    pps = cpu_pps = 0.0
    for _ in range(repeat):
        fast = run(count, False)
        pps = max(pps, count / ((fast.arrivals[-1] - fast.sends[0]) / 1e9))
        cpu_pps = max(cpu_pps, count / (max(fast.cpu_ns, 1) / 1e9))
    paced = run(paced_count, True)
    lat = [b - a for a, b in zip(paced.sends, paced.arrivals, strict=True)][WARMUP:]
    return {
        "pps": pps,
        "cpu_pps": cpu_pps,
        "p50_us": pctl(lat, 50) / 1e3,
        "p99_us": pctl(lat, 99) / 1e3,
    }


def pipecat_rows(
    count: int, paced_count: int, repeat: int
) -> tuple[dict[int, dict[str, float]], str]:
    """Run the Pipecat half in .venv-bench; returns (rows, "" or why it could not run)."""
    python = Path(os.environ.get("PIPECAT_PYTHON", ROOT / ".venv-bench" / "bin" / "python"))
    if not python.exists():
        return {}, (
            f"no Pipecat interpreter at {python}: create it with "
            "`python3.11 -m venv .venv-bench && .venv-bench/bin/pip install pipecat-ai==1.14.0` "
            "(separate venv: pipecat pins older soundfile/soxr/protobuf than streamkit)"
        )
    args = [
        str(python),
        str(ROOT / "bench" / "_pipecat_overhead.py"),
        ",".join(map(str, STAGES)),
        str(count),
        str(paced_count),
        str(repeat),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        return {}, f"pipecat run failed (rc={proc.returncode}): {proc.stderr.strip()[-500:]}"
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = {}
    for key, value in data.items():
        lat = value["latencies_ns"]
        rows[int(key)] = {
            "pps": value["pps"],
            "cpu_pps": value["cpu_pps"],
            "p50_us": pctl(lat, 50) / 1e3,
            "p99_us": pctl(lat, 99) / 1e3,
        }
    return rows, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packets", type=int, default=20_000, help="throughput run size")
    parser.add_argument("--paced", type=int, default=160, help="packets at 20 ms pace")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (best kept)")
    parser.add_argument("--no-pipecat", action="store_true", help="skip the Pipecat half")
    args = parser.parse_args(argv)

    table: list[list[object]] = []
    ours: dict[tuple[str, int], dict[str, float]] = {}
    for mode in ("fused", "inline", "tasks", "bare"):
        for n in STAGES:
            row = measure_row(n, mode, args.packets, args.paced, args.repeat)
            ours[(mode, n)] = row
            label = "asyncio.Queue x(N+1)" if mode == "bare" else f"streamkit ({mode})"
            table.append(
                [label, n, round(row["pps"]), round(row["cpu_pps"]), row["p50_us"], row["p99_us"]]
            )
    theirs: dict[int, dict[str, float]] = {}
    why = "skipped (--no-pipecat)"
    if not args.no_pipecat:
        theirs, why = pipecat_rows(args.packets // 4, args.paced, args.repeat)
    for n in STAGES:
        if n in theirs:
            row = theirs[n]
            table.append(
                [
                    "pipecat 1.14",
                    n,
                    round(row["pps"]),
                    round(row["cpu_pps"]),
                    row["p50_us"],
                    row["p99_us"],
                ]
            )
    print_table(
        f"framework overhead: 20 ms 16 kHz int16 packets, {args.packets} fast / "
        f"{args.paced} paced (first {WARMUP} paced dropped), edges capacity {CAPACITY} BLOCK",
        ["framework", "stages", "packets/s wall", "packets/CPU-s", "added p50 µs", "added p99 µs"],
        table,
    )
    if why:
        print(f"pipecat: {why}")
    sk = ours[("inline", 5)]
    pc = theirs.get(5)
    pc_pps = f"{pc['cpu_pps']:.0f}" if pc else "nan"
    ratio = f"{sk['cpu_pps'] / pc['cpu_pps']:.1f}" if pc else "nan"
    print(
        f"overhead: streamkit_pps={sk['cpu_pps']:.0f} pipecat_pps={pc_pps} ratio={ratio} "
        f"added_latency_p50_us={sk['p50_us']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
