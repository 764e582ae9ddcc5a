"""``streamkit replay SESSION``: play a recorded session through the best available pipeline.

Real-time pace by default (``--speed`` to go faster); ``--virtual`` runs on a virtual-time loop
(finishes as fast as the models compute, with the recorded jitter and charged model time);
``--fixed-costs`` charges each model call a fixed cost by its work instead of its measured CPU
time, so two replays give identical events on a busy machine (:mod:`streamkit.pipelines.costs`).
``--out FILE`` records the replayed media, every event and the metrics into a new session
(input for ``streamkit report``). Prints transcripts and answers as they come, then latencies.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console

from streamkit.commands.errors import UserError
from streamkit.commands.model_options import (
    add_model_arguments,
    add_pipeline_argument,
    assistant_config,
)
from streamkit.core.clock import LoopClock
from streamkit.core.events import ResponseDone, TranscriptFinal
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.record.mcap import SessionWriter, default_session_path
from streamkit.sources.replay import ReplaySource, Timing
from streamkit.ui.pipelines import load_pipeline, speed_problem
from streamkit.ui.state import DemoState
from streamkit.ui.summary import latency_table, lineage_rows
from streamkit.ui.tap import CallbackSink, TappedSource

__all__ = ["add_arguments", "replay_session", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "session",
        nargs="?",
        type=Path,
        default=None,
        help="MCAP session (default: the bundled session)",
    )
    add_pipeline_argument(parser, "auto", auto=True, what="what the session is replayed through")
    parser.add_argument("--speed", type=float, default=1.0, help="pace factor (default 1)")
    parser.add_argument("--virtual", action="store_true", help="run on virtual time (fast)")
    parser.add_argument(
        "--fixed-costs",
        action="store_true",
        help="with --virtual: charge fixed model costs (identical replays)",
    )
    parser.add_argument(
        "--timing",
        default="arrival",
        choices=["arrival", "pts"],
        help="deliver at recorded arrival (jitter) or at capture pts",
    )
    parser.add_argument("--out", type=Path, default=None, help="record the run into this MCAP")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    add_model_arguments(parser)


def _describe(payload: Any) -> str | None:
    if isinstance(payload, TranscriptFinal) and payload.text.strip():
        return f"[bold]final[/] {payload.text.strip()}"
    if isinstance(payload, ResponseDone):
        if payload.cancelled:
            return f"[dim]answer to {payload.utterance_id} cancelled (barge-in)[/]"
        return f"[green]answer[/] {payload.text.strip()}"
    name = type(payload).__name__
    if name in ("SpeechStarted", "SpeechStopped"):
        return f"[dim]{name}[/] {payload.utterance_id}"
    return None


async def replay_session(
    session: Path,
    *,
    pipeline: str = "best",
    speed: float = 1.0,
    virtual: bool = False,
    timing: Timing = "arrival",
    out: Path | None = None,
    console: Console | None = None,
    show_events: bool = True,
    config: Any = None,
) -> dict[str, Any]:
    """Replay ``session`` (see the module docstring); returns the final metrics snapshot."""
    console = console or Console()
    loaded = load_pipeline(pipeline, virtual=virtual, config=config)
    problem = speed_problem(loaded.kind, speed)
    if problem is not None:
        raise UserError(problem)
    console.print(f"pipeline: [bold]{loaded.kind}[/] — {loaded.note}")
    writer = SessionWriter(out, metadata={"replayed_from": str(session)}) if out else None
    clock = LoopClock()
    metrics = MetricsRegistry()

    def tap(port: str, packet: Packet[Any]) -> Packet[Any]:
        if writer is not None:
            writer.write_packet(packet, clock.now())
        return packet

    turns = DemoState()  # the per-turn headline, as the demo computes it

    def on_item(now: int, item: Any) -> None:
        if isinstance(item, Packet):
            turns.on_event(item, now)
            if writer is not None:
                writer.write_packet(item, now)
            line = _describe(item.payload)
            if line and show_events:
                base = pipe.state.base_time or 0
                console.print(f"{(now - base) / 1e9:7.2f}s  {line}")

    source = ReplaySource(session, speed=speed, timing=timing)
    pipe, _controls = loaded.factory(TappedSource(source, tap), CallbackSink(on_item), metrics)
    if writer is not None:
        writer.add_metadata("streamkit.core.pipeline", {"kind": loaded.kind})
    try:
        await pipe.run()
    finally:
        if writer is not None:
            if pipe.state.base_time is not None:
                writer.add_metadata(
                    "streamkit.recorder", {"base_time_ns": str(pipe.state.base_time)}
                )
            writer.write_metrics(metrics, pipe.clock.now(), samples=True)
            writer.close()
    snapshot = metrics.snapshot()
    for name, (n, p50, p90) in turns.headline().items():
        console.print(f"end of speech → {name}: p50 {p50:.0f} ms, p90 {p90:.0f} ms (n={n})")
    console.print(latency_table(snapshot))
    for uid, events in lineage_rows(snapshot["lineage"]):
        console.print(f"  {uid}: " + " → ".join(f"{ev} {ms:.0f} ms" for ev, ms in events))
    return snapshot


def run(args: argparse.Namespace) -> int:
    session = args.session or default_session_path()
    if not session.exists():
        raise UserError(f"no session file at {session} (record one with `streamkit record`)")
    if args.fixed_costs and not args.virtual:
        raise UserError("--fixed-costs charges virtual time: pass --virtual too")
    config = assistant_config(args)
    if args.fixed_costs:
        from dataclasses import replace

        from streamkit.pipelines.costs import FixedCosts

        config = replace(config, costs=FixedCosts())
    console = Console(quiet=False)
    coro = replay_session(
        session,
        pipeline=args.pipeline,
        speed=args.speed,
        virtual=args.virtual,
        timing=args.timing,
        out=args.out,
        console=console,
        show_events=not args.quiet,
        config=config,
    )
    if args.virtual:
        from streamkit.testing.replay import run_on_virtual_loop

        run_on_virtual_loop(coro)
    else:
        asyncio.run(coro)
    if args.out:
        console.print(f"recorded → {args.out}")
    return 0
