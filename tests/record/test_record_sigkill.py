"""A real recording process killed with SIGKILL loses at most the chunk in progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from streamkit.core.packet import Packet
from streamkit.record.mcap import read_session

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from streamkit.core.pipeline import Pipeline
    from streamkit.record.mcap import Recorder, SessionWriter
    from streamkit.record.assemble import Segment, TimelineSource, assemble

    class Reporting(SessionWriter):
        def flush(self) -> None:
            super().flush()
            print(self.messages, flush=True)  # everything written so far is durable now

    async def main(media: str, out: str) -> None:
        packets = assemble([Segment(Path(media), pause=0.0)] * 4, fps=25)  # 12 s, real time
        writer = Reporting(out, chunk_bytes=48 * 1024)
        pipe = Pipeline()
        audio, video = pipe.edge("audio", 64), pipe.edge("video", 8)
        pipe.add(TimelineSource(packets), outputs={"audio": audio, "video": video})
        pipe.add(Recorder(writer), inputs={"audio": audio, "video": video})
        print("ready", flush=True)
        await pipe.run()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def test_sigkill_loses_at_most_the_last_chunk(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "killed.mcap"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir / "av/grid/bbaf2n.mpg"), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    durable = 0
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        flushes = 0
        while flushes < 12:  # ≈ 1.5 s of recording
            line = proc.stdout.readline()
            assert line, "recorder exited before it was killed"
            durable = int(line)
            flushes += 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    session = read_session(out)
    assert session.truncated  # no footer: the summary was never written
    got = [m for m in session.messages if isinstance(m.item, Packet)]
    assert len(session.messages) >= durable > 0  # nothing flushed before the kill was lost
    audio = [m.item for m in got if m.topic == "/audio"]
    assert [p.seq for p in audio] == list(range(len(audio)))  # a gap-free prefix
    peak = float(np.max(np.abs(np.concatenate([p.payload.samples for p in audio]))))
    assert peak > 0.1  # real speech came back
    assert session.metadata["streamkit.recorder"]["base_time_ns"]

    # and the truncated session still replays (its summary is missing: both ports offered)
    from streamkit.testing.replay import run_replay
    from streamkit.ui.pipelines import load_pipeline

    trace = run_replay(load_pipeline("vad").factory, out)
    assert trace.metrics["edges"]["audio"]["put"] == len(audio)
