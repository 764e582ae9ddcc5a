"""Build the bundled demo session (streamkit/data/default_session.mcap) from real media.

Three turns assembled from the real test media (tests/data, see its NOTICE.md):

1. GRID talking head ``bbaf2n`` (video + audio): "bin blue at f two now";
2. "go forward ten meters" (pocketsphinx ``goforward.wav``) over the astronaut portrait;
3. GRID talking head ``lbax4n``: "lay blue at x four now";

each followed by a pause for the assistant to answer. The timeline is played at real-time
pace through a real pipeline (TimelineSource → Recorder on the loop clock), so the file holds
real capture pts and real arrival times (jitter). Takes about as long as the session (~13 s).

    .venv/bin/python scripts/make_bundled_session.py [--out PATH] [--fps 10] [--quality 60]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from streamkit.core.pipeline import Pipeline
from streamkit.record.mcap import Recorder, SessionWriter, read_session
from streamkit.record.assemble import Segment, TimelineSource, assemble

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = ROOT / "streamkit" / "data" / "default_session.mcap"

SEGMENTS = [
    Segment(DATA / "av/grid/bbaf2n.mpg", lead=0.6, pause=2.0),
    Segment(
        DATA / "speech/utterances/pocketsphinx_goforward/goforward.wav",
        DATA / "images/imageio_astronaut.png",
        pause=2.0,
    ),
    Segment(DATA / "av/grid/lbax4n.mpg", pause=2.0),
]
TRANSCRIPTS = ["bin blue at f two now", "go forward ten meters", "lay blue at x four now"]


async def record(out: Path, fps: float, quality: int) -> None:
    packets = assemble(SEGMENTS, fps=fps, source="bundled")
    writer = SessionWriter(
        out,
        jpeg_quality=quality,
        metadata={
            "source": "scripts/make_bundled_session.py",
            "turns": " | ".join(TRANSCRIPTS),
            "media": " + ".join(str(s.audio.relative_to(DATA)) for s in SEGMENTS if s.audio),
        },
    )
    pipe = Pipeline()
    audio = pipe.edge("audio", 64)
    video = pipe.edge("video", 16)
    pipe.add(TimelineSource(packets, name="media"), outputs={"audio": audio, "video": video})
    pipe.add(Recorder(writer), inputs={"audio": audio, "video": video})
    try:
        await pipe.run()
    finally:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--quality", type=int, default=60)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(record(args.out, args.fps, args.quality))
    session = read_session(args.out)
    print(f"{args.out}: {args.out.stat().st_size} bytes, {len(session.messages)} messages, "
          f"topics {session.topics()}")


if __name__ == "__main__":
    main()
