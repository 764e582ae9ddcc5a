"""``streamkit client``: stream a file or the microphone (and camera) to a server.

``--file`` streams the file at real-time pace (16 kHz PCM16 frames of 20 ms stamped with their
capture time), then ``--tail-s`` of silence and an ``input.commit``, waits for the answer and
exits. ``--mic`` streams until Ctrl-C; ``--camera`` adds a JPEG frame every 500 ms. Partials,
finals and answers are printed live; at the end, the latencies this client saw.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamkit.clock import NS_PER_MS, NS_PER_S, LoopClock
from streamkit.events import (
    ErrorEvent,
    ResponseDelta,
    ResponseDone,
    TranscriptFinal,
    TranscriptPartial,
)
from streamkit.media import ASR_SAMPLE_RATE
from streamkit.media_io import load_audio
from streamkit.metrics import percentile
from streamkit.transport.client import Client, Received
from streamkit.transport.protocol import SessionCreated, SessionUpdated

__all__ = ["add_arguments", "run"]

HELP = "stream a file or the microphone to a server and print what comes back"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="audio/video file to stream (any format PyAV reads)")
    src.add_argument("--mic", action="store_true", help="stream the default microphone")
    parser.add_argument("--camera", action="store_true", help="also send camera frames")
    parser.add_argument("--url", default="ws://127.0.0.1:8765/ws")
    parser.add_argument("--token", default=None)
    parser.add_argument("--pipeline", default=None, help="assistant, captions, echo…")
    parser.add_argument("--tail-s", type=float, default=1.5, help="silence after the file (s)")
    parser.add_argument("--no-realtime", action="store_true", help="send as fast as possible")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="wait for the answer")


class _View:
    """What the terminal shows: finals, the current partial, answers, errors."""

    def __init__(self) -> None:
        self.finals: list[str] = []
        self.partial = ""
        self.answers: dict[str, str] = {}
        self.errors: deque[str] = deque(maxlen=5)
        self.status = "connecting"

    def on_event(self, item: Received) -> None:
        ev = item.event
        if isinstance(ev, SessionCreated):
            self.status = f"session {ev.session_id} ({ev.protocol}), pipelines {ev.pipelines}"
        elif isinstance(ev, SessionUpdated):
            self.status = f"pipeline {ev.config.pipeline}"
        elif isinstance(ev, TranscriptPartial):
            self.partial = ev.text
        elif isinstance(ev, TranscriptFinal):
            self.finals.append(ev.text)
            self.partial = ""
        elif isinstance(ev, ResponseDelta):
            self.answers[ev.response_id] = self.answers.get(ev.response_id, "") + ev.text
        elif isinstance(ev, ResponseDone):
            self.answers[ev.response_id] = ev.text + (" [cancelled]" if ev.cancelled else "")
        elif isinstance(ev, ErrorEvent):
            self.errors.append(f"{ev.code}: {ev.message}")

    def render(self) -> Text:
        text = Text()
        text.append(self.status + "\n", style="dim")
        text.append("you: ", style="bold cyan")
        text.append(" ".join(self.finals[-6:]))
        text.append(" " + self.partial + "\n", style="italic dim")
        for answer in list(self.answers.values())[-3:]:
            text.append("assistant: ", style="bold green")
            text.append(answer + "\n")
        for error in self.errors:
            text.append(error + "\n", style="red")
        return text


def _latency_table(client: Client) -> Table:
    table = Table(title="latencies seen by this client")
    for col in ("metric", "n", "p50", "p90", "max"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    log = client.latency
    for name, values in (
        ("word commit (final − word end)", log.commit),
        ("first partial (− first word start)", log.first_partial),
        ("end of speech → first answer token", log.eos_to_first_token),
    ):
        ordered = sorted(v / NS_PER_S for v in values)
        if ordered:
            p50, p90 = percentile(ordered, 50), percentile(ordered, 90)
            table.add_row(
                name, str(len(ordered)), f"{p50:.3f} s", f"{p90:.3f} s", f"{ordered[-1]:.3f} s"
            )
        else:
            table.add_row(name, "0", "-", "-", "-")
    return table


async def _camera(client: Client) -> None:
    import cv2

    cap = await asyncio.to_thread(cv2.VideoCapture, 0)
    clock = LoopClock()
    try:
        while True:
            ok, frame = await asyncio.to_thread(cap.read)
            taken = clock.now()
            if ok:
                good, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 70])
                if good:
                    await client.send_video(jpeg.tobytes(), taken)
            await clock.sleep(500 * NS_PER_MS)
    finally:
        cap.release()


async def _mic(client: Client) -> None:
    import sounddevice

    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[npt.NDArray[np.float32]] = asyncio.Queue(maxsize=100)

    def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
        block = np.array(indata[:, 0], dtype=np.float32)

        def put() -> None:
            if chunks.full():
                chunks.get_nowait()  # the sender fell 2 s behind: drop the oldest
            chunks.put_nowait(block)

        loop.call_soon_threadsafe(put)

    with sounddevice.InputStream(
        samplerate=ASR_SAMPLE_RATE, channels=1, dtype="float32", blocksize=320, callback=callback
    ):
        while True:
            await client.send_audio(await chunks.get())


async def _main(args: argparse.Namespace, console: Console) -> int:
    view = _View()
    audio = load_audio(args.file) if args.file else None
    async with Client.connect(args.url, token=args.token, on_event=view.on_event) as client:
        fields: dict[str, Any] = {"video": bool(args.camera)}
        if args.pipeline:
            fields["pipeline"] = args.pipeline
        await client.update(**fields)
        with Live(view.render(), console=console, refresh_per_second=8) as live:

            async def refresh() -> None:
                while True:
                    live.update(view.render())
                    await LoopClock().sleep(125 * NS_PER_MS)

            async with asyncio.TaskGroup() as group:
                painter = group.create_task(refresh())
                camera = group.create_task(_camera(client)) if args.camera else None
                try:
                    if audio is None:
                        await _mic(client)
                    else:
                        await client.stream_audio(audio, realtime=not args.no_realtime)
                        tail = np.zeros(int(args.tail_s * ASR_SAMPLE_RATE), np.float32)
                        await client.stream_audio(tail, realtime=not args.no_realtime)
                        await client.commit()
                        pipeline = (
                            client.created.config.pipeline if not args.pipeline else args.pipeline
                        )
                        want = TranscriptFinal if pipeline == "captions" else ResponseDone
                        with contextlib.suppress(TimeoutError, ConnectionError):
                            await client.wait_for(
                                lambda r: isinstance(r.event, want), args.timeout_s
                            )
                finally:
                    painter.cancel()
                    if camera is not None:
                        camera.cancel()
                live.update(view.render())
        console.print(_latency_table(client))
    return 0


def run(args: argparse.Namespace) -> int:
    console = Console()
    try:
        return asyncio.run(_main(args, console))
    except KeyboardInterrupt:
        return 0
    except (OSError, ConnectionError) as error:
        print(f"streamkit client: {error}", file=sys.stderr)
        return 1
