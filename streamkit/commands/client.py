"""``streamkit client``: stream a file or the microphone (and camera) to a server.

``--file`` streams the file at real-time pace (16 kHz PCM16 frames of 20 ms stamped with their
capture time, and its video frames as JPEG at their container times when it has a video
track), then ``--tail-s`` of silence and an ``input.commit``, waits until the answer to its
*last* utterance is done and exits. ``--mic`` streams until Ctrl-C; ``--camera`` adds a JPEG
frame every 500 ms.

Every turn is printed once it is complete, in order — what was heard, the answer, and its
latency from the end of speech (→ final transcript, → first answer token) — then the
session's p50/p90 of both. ``--verbose`` adds the per-stage breakdown; ``--json`` prints
one JSON object per line instead (every event, every turn, the summary) for scripts.

Exit status: 0 when every turn was answered; 1 on a server error, a closed session or a
timeout; 2 for a usage problem (a missing file, an unknown pipeline, no microphone/camera).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
from typing import Any

import msgspec
import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streamkit.commands.client_media import (
    camera_frames,
    check_mic,
    check_url,
    load_file,
    mic_audio,
    open_camera,
    video_frames,
)
from streamkit.commands.errors import UserError
from streamkit.commands.model_options import (
    PIPELINES,
    add_pipeline_argument,
    add_turn_arguments,
    turn_fields,
)
from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock, Nanos
from streamkit.core.events import ErrorEvent
from streamkit.core.media import ASR_SAMPLE_RATE
from streamkit.transport.client import Client, Received
from streamkit.transport.protocol import MetricsEvent, SessionCreated, SessionUpdated
from streamkit.transport.turns import Turn, summarize

__all__ = ["HELP", "add_arguments", "run"]

HELP = "stream a file or the microphone to a server and print every turn"

FATAL_ERRORS = frozenset({"unknown_pipeline", "unsupported_source", "pipeline_error"})
"""Error codes after which the session cannot do what was asked: the client stops."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="audio or video file to stream (any format PyAV reads)")
    src.add_argument("--mic", action="store_true", help="stream the default microphone")
    parser.add_argument("--camera", action="store_true", help="also send camera frames (2/s)")
    parser.add_argument(
        "--no-video", action="store_true", help="with --file: send only its audio track"
    )
    parser.add_argument(
        "--video-fps", type=float, default=5.0, help="with --file: most video frames sent per s"
    )
    parser.add_argument("--url", default="ws://127.0.0.1:8765/ws", help="the server's /ws URL")
    parser.add_argument(
        "--token", default=None, help="auth token, when the server was started with one"
    )
    add_pipeline_argument(parser, None, what="the pipeline to ask for (default: the server's)")
    parser.add_argument(
        "--tail-s", type=float, default=1.5, help="seconds of silence sent after the file"
    )
    parser.add_argument(
        "--no-realtime", action="store_true", help="send the file as fast as possible"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=60.0, help="give up waiting for the answer after"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--play", action="store_true",
                        help="speak the answers on the default output device (server --tts)")
    parser.add_argument("--save-audio", default=None, metavar="FILE.wav",
                        help="write the answers' audio, as heard, to a WAV file")
    parser.add_argument(
        "--verbose", action="store_true", help="also show partials and the per-stage breakdown"
    )
    add_turn_arguments(parser, client=True)


# -- what is printed --------------------------------------------------------------------


def _s(value: Nanos | None) -> str:
    return "-" if value is None else f"{value / NS_PER_S:.2f} s"


def turn_lines(turn: Turn) -> Text:
    """One turn: what was heard, the answer and its latencies."""
    text = Text()
    text.append("you: ", style="bold cyan")
    text.append((turn.heard or "(no words)") + "\n")
    if turn.answered or turn.answer:
        text.append("assistant: ", style="bold green")
        text.append(turn.answer.strip() + (" [cancelled]" if turn.cancelled else "") + "\n")
    latency = f"  end of speech → final transcript {_s(turn.eos_to_final_ns)}"
    if turn.answered:
        latency += f" · → first answer token {_s(turn.eos_to_first_token_ns)}"
    text.append(latency + "\n", style="dim")
    return text


def headline(client: Client) -> Table:
    """The session's p50/p90 of the two per-turn latencies a user feels."""
    turns = client.turns.ordered
    table = Table(title="latency per turn (from the end of speech)")
    for col in ("measure", "n", "p50", "p90"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    rows: list[tuple[str, list[Nanos]]] = [
        ("→ first answer token", [v for t in turns if (v := t.eos_to_first_token_ns) is not None]),
        ("→ final transcript", [v for t in turns if (v := t.eos_to_final_ns) is not None]),
    ]
    for name, values in rows:
        n, p50, p90 = summarize(values)
        if p50 is None or p90 is None:
            table.add_row(name, "0", "-", "-")
        else:
            table.add_row(name, str(n), f"{p50:.2f} s", f"{p90:.2f} s")
    return table


def breakdown(client: Client, metrics: MetricsEvent | None) -> Table:
    """One level down: word commit and first partial as this client saw them, then the
    server's per-stage marks of the last turn (ms after its speech start)."""
    table = Table(title="breakdown (latencies seen by this client)")
    for col in ("measure", "n", "p50", "p90", "max"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    log = client.latency
    for name, values in (
        ("word commit (final − word end)", log.commit),
        ("first partial (− first word start)", log.first_partial),
    ):
        n, p50, p90 = summarize(values)
        if p50 is None or p90 is None:
            table.add_row(name, "0", "-", "-", "-")
        else:
            table.add_row(name, str(n), f"{p50:.3f} s", f"{p90:.3f} s",
                          f"{max(values) / NS_PER_S:.3f} s")
    if metrics is not None and metrics.lineage:
        uid, marks = list(metrics.lineage.items())[-1]
        start = marks.get("asr.vad_start", min(marks.values()))
        for name, t in sorted(marks.items(), key=lambda kv: kv[1]):
            table.add_row(f"  {uid} {name}", "", f"+{(t - start) / NS_PER_MS:.0f} ms", "", "")
    return table


class _Printer:
    """Prints turns as they complete, in order (or JSON lines); tracks errors."""

    def __init__(self, console: Console, as_json: bool, verbose: bool) -> None:
        self.console = console
        self.as_json = as_json
        self.verbose = verbose
        self.client: Client | None = None
        self.printed: set[str] = set()
        self.errors: list[ErrorEvent] = []
        self.metrics: MetricsEvent | None = None
        self.metrics_seen = 0
        self.idle_at: tuple[int, int, int] | None = None
        """The turns as they were when the last metrics event said the server was idle."""
        self.answers = True  # whether the session's pipeline answers (captions does not)
        self.t0: Nanos | None = None

    def on_event(self, item: Received) -> None:
        event = item.event
        self.t0 = item.at if self.t0 is None else self.t0
        if isinstance(event, MetricsEvent):
            self.metrics = event
            self.metrics_seen += 1
            idle = self.client is not None and server_idle(event, self.client.samples_sent)
            self.idle_at = _signature(self.client) if idle and self.client else None
            return  # not printed line by line: large, periodic
        if isinstance(event, SessionCreated | SessionUpdated):
            self.answers = event.config.pipeline != "captions"
        if self.as_json:
            record = {"at_s": round((item.at - self.t0) / NS_PER_S, 3),
                      "event": msgspec.to_builtins(event)}
            print(msgspec.json.encode(record).decode(), flush=True)
        if isinstance(event, ErrorEvent):
            self.errors.append(event)
            if not self.as_json and event.code not in FATAL_ERRORS:  # fatal: said once at exit
                self.console.print(f"[red]error {event.code}: {event.message}[/]")
        self.flush()

    def complete(self, turn: Turn) -> bool:
        return turn.finalised and (turn.answered or not self.answers or not turn.heard)

    def flush(self, everything: bool = False) -> None:
        """Print the complete turns not printed yet, in order (all of them at the end)."""
        if self.client is None:
            return
        for turn in self.client.turns.ordered:
            if turn.utterance_id in self.printed:
                continue
            if not everything and not self.complete(turn):
                return  # keep the order: a later turn waits for this one
            self.printed.add(turn.utterance_id)
            if not turn.heard and not turn.answer:
                continue  # the VAD heard something that had no words
            if self.as_json:
                print(msgspec.json.encode({"turn": turn.as_dict()}).decode(), flush=True)
            else:
                self.console.print(turn_lines(turn), end="")

    def live_text(self) -> Text:
        """The turn being spoken or answered now (the terminal's live line)."""
        text = Text()
        if self.client is None:
            return text
        for turn in self.client.turns.ordered:
            if turn.utterance_id in self.printed:
                continue
            if turn.heard or turn.partial:
                text.append("you: ", style="bold cyan")
                text.append(turn.heard + " ")
                text.append(turn.partial, style="italic dim")
                text.append("\n")
            if turn.answer:
                text.append("assistant: ", style="bold green")
                text.append(turn.answer + "\n")
        return text


# -- the session ------------------------------------------------------------------------


async def _stream_file(client: Client, args: argparse.Namespace, audio: Any,
                       frames: list[tuple[int, bytes]]) -> None:
    realtime = not args.no_realtime
    t0 = client.start_audio_clock()
    async with asyncio.TaskGroup() as group:
        if frames:
            group.create_task(video_frames(client, frames, t0, realtime))
        await client.stream_audio(audio, realtime=realtime)
        tail = np.zeros(int(args.tail_s * ASR_SAMPLE_RATE), np.float32)
        await client.stream_audio(tail, realtime=realtime)
    await client.commit()


async def _session(args: argparse.Namespace, printer: _Printer, client: Client,
                   audio: Any, frames: list[tuple[int, bytes]], camera: Any) -> int:
    printer.client = client
    fields: dict[str, Any] = {"video": bool(frames) or camera is not None}
    if args.play or args.save_audio:
        fields["output_audio"] = True
    if args.pipeline:
        fields["pipeline"] = args.pipeline
    fields.update(turn_fields(args))
    if args.verbose or audio is not None:  # a file's end is told by an idle server (_settle)
        fields["metrics_interval_ms"] = 250 if audio is not None else 1000
    since = client.event_count
    await client.update(**fields)
    # the server confirms (or refuses) the settings before any media is sent
    reply = await client.wait_for(
        lambda r: isinstance(r.event, SessionUpdated | ErrorEvent), 30, since=since
    )
    if isinstance(reply.event, ErrorEvent) and reply.event.code in FATAL_ERRORS:
        raise UserError(f"the server refused: {reply.event.message}")
    async with asyncio.TaskGroup() as group:
        cam = group.create_task(camera_frames(client, camera)) if camera is not None else None
        try:
            if audio is None:
                await mic_audio(client)
            else:
                await _stream_file(client, args, audio, frames)
                await _settle(client, printer, args.timeout_s)
        finally:
            if cam is not None:
                cam.cancel()
    return 0


def _signature(client: Client) -> tuple[int, int, int]:
    turns = client.turns.ordered
    return len(turns), sum(t.finalised for t in turns), sum(t.answered for t in turns)


def server_idle(event: MetricsEvent, samples_sent: int) -> bool:
    """The server holds nothing of this client's audio any more: it received every sample,
    every pipeline edge is empty and the ASR has decoded all it was given."""
    snapshot = event.snapshot
    edges = snapshot.get("edges", {}).values()
    return (
        event.transport.get("ws.audio.samples", samples_sent) == samples_sent
        and all(edge.get("depth", 0) == 0 for edge in edges)
        and float(snapshot.get("gauges", {}).get("asr.lag_s", 0.0)) == 0.0
    )


async def _settle(client: Client, printer: _Printer, timeout_s: float) -> None:
    """Wait until the answer to the last utterance is done: every utterance is final and
    answered, and a ``metrics`` event sent after the commit, with the turns as they are now,
    says the server is idle (all audio received and decoded). Waiting for one more
    ``response.done`` instead matched an earlier answer and lost the last turn (bug 3)."""
    after = printer.metrics_seen
    deadline = client.clock.now() + round(timeout_s * NS_PER_S)

    def done() -> bool:
        if any(e.code in FATAL_ERRORS for e in printer.errors):
            return True
        idle = printer.idle_at
        return (
            printer.metrics_seen > after
            and idle is not None
            and idle == _signature(client)
            and client.turns.settled(answers=printer.answers)
        )

    remaining = (deadline - client.clock.now()) / NS_PER_S
    try:
        await client.wait_until(done, remaining)
    except TimeoutError:
        pending = [t.utterance_id for t in client.turns.ordered if not printer.complete(t)]
        raise UserError(f"timed out after {timeout_s:g} s waiting for "
                        f"{', '.join(pending) or 'the answer'} (--timeout-s)", 1) from None


async def _main(args: argparse.Namespace, console: Console) -> int:
    check_url(args.url)
    audio: Any = None
    frames: list[tuple[int, bytes]] = []
    if args.file:
        audio, frames = load_file(args.file, not args.no_video, args.video_fps)
    else:
        check_mic()
    camera = open_camera() if args.camera else None
    printer = _Printer(console, args.json, args.verbose)
    status = 0
    async with Client.connect(args.url, token=args.token, on_event=printer.on_event) as client:
        from streamkit.transport import speaker as answer_audio

        speaker = answer_audio.attach(client, args.play) if args.play or args.save_audio else None
        if args.json or not console.is_terminal:
            status = await _session(args, printer, client, audio, frames, camera)
        else:
            with Live(printer.live_text(), console=console, refresh_per_second=8,
                      transient=True) as live:

                async def refresh() -> None:
                    while True:
                        live.update(printer.live_text())
                        await LoopClock().sleep(125 * NS_PER_MS)

                async with asyncio.TaskGroup() as group:
                    painter = group.create_task(refresh())
                    try:
                        status = await _session(args, printer, client, audio, frames, camera)
                    finally:
                        painter.cancel()
        if speaker is not None:
            await answer_audio.finish(client, speaker, args.timeout_s)
    printer.flush(everything=True)
    if speaker is not None:
        if speaker.message:
            console.print(speaker.message)
        if args.save_audio:
            seconds = speaker.save(pathlib.Path(args.save_audio))
            console.print(f"answer audio: {seconds:.1f} s → {args.save_audio}")
    if args.json:
        print(msgspec.json.encode({"summary": _summary(client, printer)}).decode())
    else:
        table = headline(client)
        if args.no_realtime:
            table.caption = "sent faster than real time: these latencies mean little"
        console.print(table)
        if args.verbose:
            console.print(breakdown(client, printer.metrics))
    if printer.errors:
        return 1
    return status


def _summary(client: Client, printer: _Printer) -> dict[str, Any]:
    turns = client.turns.ordered
    out: dict[str, Any] = {"turns": sum(1 for t in turns if t.heard or t.answer),
                           "errors": [e.code for e in printer.errors]}
    for key, values in (
        ("eos_to_first_token", [v for t in turns if (v := t.eos_to_first_token_ns) is not None]),
        ("eos_to_final", [v for t in turns if (v := t.eos_to_final_ns) is not None]),
    ):
        n, p50, p90 = summarize(values)
        out[key] = {"n": n, "p50_s": p50, "p90_s": p90}
    return out


def run(args: argparse.Namespace) -> int:
    if args.pipeline and args.pipeline not in PIPELINES:
        raise UserError(f"unknown pipeline {args.pipeline!r}: choose from {', '.join(PIPELINES)}")
    turn_fields(args)  # a turn threshold out of range: one line, before connecting
    return asyncio.run(_main(args, Console()))
