"""Pipecat half of bench/overhead.py (run by the .venv-bench interpreter; prints JSON).

Same workload as streamkit's: 20 ms packets of 16 kHz mono int16 (640 bytes) as
``InputAudioRawFrame`` (Pipecat's mic-input frame) through N pass-through processors; the
source is ``PipelineWorker.queue_frame`` and the sink is a last processor that timestamps
arrivals. Throughput: all frames queued as fast as possible. Latency: one frame every 20 ms
(one in flight), time from ``queue_frame`` to the sink processor.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from loguru import logger
from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame, StartFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

logger.remove()
AUDIO = bytes(640)


class Pass(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Sink(FrameProcessor):
    def __init__(self, expect: int) -> None:
        super().__init__()
        self.expect = expect
        self.arrivals: list[int] = []
        self.cpu_end = 0
        self.started = asyncio.Event()
        self.done = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.arrivals.append(time.perf_counter_ns())
            if len(self.arrivals) == self.expect:
                self.cpu_end = time.process_time_ns()
                self.done.set()
        elif isinstance(frame, StartFrame):
            self.started.set()
        await self.push_frame(frame, direction)


async def run(stages: int, count: int, paced: bool) -> list[int]:
    """Paced: per-frame latencies (ns). Fast: [first send, last arrival, CPU ns between]."""
    sink = Sink(count)
    worker = PipelineWorker(
        Pipeline([*(Pass() for _ in range(stages)), sink]),
        idle_timeout_secs=None,
        check_dangling_tasks=False,
        enable_rtvi=False,
        enable_turn_tracking=False,
    )
    runner = PipelineRunner(handle_sigint=False)
    frames = [
        InputAudioRawFrame(audio=AUDIO, sample_rate=16_000, num_channels=1) for _ in range(count)
    ]
    sends: list[int] = []
    async with asyncio.TaskGroup() as group:
        group.create_task(runner.run(worker))
        await sink.started.wait()
        loop = asyncio.get_running_loop()
        anchor = loop.time()
        cpu_start = time.process_time_ns()
        for i, frame in enumerate(frames):
            if paced:
                await asyncio.sleep(max(0.0, anchor + i * 0.020 - loop.time()))
            sends.append(time.perf_counter_ns())
            await worker.queue_frame(frame)
        await sink.done.wait()
        await worker.queue_frame(EndFrame())
    if paced:
        return [b - a for a, b in zip(sends, sink.arrivals, strict=True)]
    return [sends[0], sink.arrivals[-1], sink.cpu_end - cpu_start]


def main() -> None:
    stages = [int(s) for s in sys.argv[1].split(",")]
    count, paced_count = int(sys.argv[2]), int(sys.argv[3])
    repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    out = {}
    for n in stages:
        pps = cpu_pps = 0.0
        for _ in range(repeat):  # best of `repeat`, like the streamkit half
            first, last, cpu = asyncio.run(run(n, count, paced=False))
            pps = max(pps, count / ((last - first) / 1e9))
            cpu_pps = max(cpu_pps, count / (max(cpu, 1) / 1e9))
        latencies = asyncio.run(run(n, paced_count, paced=True))[10:]
        out[n] = {"pps": pps, "cpu_pps": cpu_pps, "latencies_ns": latencies}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
