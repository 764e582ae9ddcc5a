"""``streamkit record OUT.mcap``: record a session from live devices or from media files.

- ``--file A [--file B …]``: one file is played through the file source at real-time pace
  (its own audio and video); several are assembled into a multi-turn session (each file's
  audio and video, then ``--pause`` seconds of silence), also played at real-time pace, so the
  recording holds real capture pts and real arrival times.
- no ``--file``: the microphone (and camera when present) until Ctrl-C or ``--seconds``.

The file is chunked: if the process dies, everything but the last chunk is readable.
Replay it with ``streamkit replay OUT.mcap``; report on it with ``streamkit report``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from streamkit.core.clock import NS_PER_S

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="MCAP file to write")
    parser.add_argument("--file", dest="files", type=Path, action="append", default=[],
                        help="media file to record (repeat for a multi-turn session)")
    parser.add_argument("--image", type=Path, default=None,
                        help="still image shown while files without video play")
    parser.add_argument("--pause", type=float, default=1.5,
                        help="seconds of silence after each file when assembling")
    parser.add_argument("--fps", type=float, default=10.0, help="video rate when assembling")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--jpeg-quality", type=int, default=70)


async def _record(args: argparse.Namespace) -> int:
    from streamkit.core.edge import Policy
    from streamkit.core.pipeline import Pipeline
    from streamkit.core.stage import Source
    from streamkit.record.mcap import Recorder, SessionWriter

    source: Source
    label: str
    if len(args.files) == 1 and args.image is None:
        from streamkit.sources.files import FileSource

        source = FileSource(args.files[0], pace=True, name="file")
        label = f"file {args.files[0]}"
    elif args.files:
        from streamkit.record.assemble import Segment, TimelineSource, assemble

        segments = [Segment(f, None if _has_video(f) else args.image, pause=args.pause)
                    for f in args.files]
        source = TimelineSource(assemble(segments, fps=args.fps), name="files")
        label = "files " + " + ".join(str(f) for f in args.files)
    else:
        from streamkit.ui.live import live_source, probe_devices

        devices = probe_devices()
        if not devices.any:
            print("streamkit record: no microphone or camera found (install PortAudio: "
                  "`apt install libportaudio2`, connect a device) — or record files with --file")
            return 2
        source = live_source(devices)
        label = f"live {devices.describe()}"
    writer = SessionWriter(args.out, jpeg_quality=args.jpeg_quality, metadata={"source": label})
    pipe = Pipeline()
    ports = source.outputs
    edges = {p: pipe.edge(p, 64 if p == "audio" else 8, Policy.BLOCK) for p in ports}
    pipe.add(source, outputs=edges)
    pipe.add(Recorder(writer), inputs=edges)
    print(f"recording {label} → {args.out} (Ctrl-C to stop)")

    async def stop_later() -> None:
        if args.seconds is not None:
            await pipe.clock.sleep(round(args.seconds * NS_PER_S))
            pipe.drain()

    try:
        async with asyncio.TaskGroup() as group:
            timer = group.create_task(stop_later())
            await pipe.run()
            timer.cancel()
    finally:
        writer.close()
    print(f"wrote {args.out}: {writer.messages} messages, {args.out.stat().st_size} bytes")
    return 0


def _has_video(path: Path) -> bool:
    from streamkit.sources.files import probe

    try:
        return bool(probe(path).has_video)
    except Exception:
        return False


def run(args: argparse.Namespace) -> int:
    for f in args.files:
        if not f.exists():
            print(f"streamkit record: no such file {f}")
            return 2
    try:
        return asyncio.run(_record(args))
    except KeyboardInterrupt:
        print(f"stopped; {args.out} holds everything recorded")
        return 0
