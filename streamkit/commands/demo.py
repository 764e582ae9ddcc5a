"""``streamkit demo``: the assistant live on your camera and microphone, or on the bundled session.

With no devices (CI, servers) it replays the bundled real session at real-time pace through the
best installed pipeline (the full assistant when present), shows it (window or terminal) and
prints the latency summary. Keys in the window: q quit, m mute, r record.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from streamkit.commands.errors import UserError
from streamkit.commands.model_options import (
    add_model_arguments,
    add_pipeline_argument,
    assistant_config,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", type=Path, default=None,
                        help="replay this MCAP session instead of live devices")
    parser.add_argument("--live", default="auto", choices=["auto", "yes", "no"],
                        help="use live devices: auto (when present), yes (require), no")
    add_pipeline_argument(parser, "auto", auto=True, what="what the demo runs")
    parser.add_argument("--window", default="auto", choices=["auto", "yes", "no"],
                        help="OpenCV window (auto: when a display exists) or terminal view")
    parser.add_argument("--speed", type=float, default=1.0, help="replay pace factor")
    parser.add_argument("--snapshot", type=Path, default=None,
                        help="write the final rendered frame to this PNG")
    parser.add_argument("--linger", type=float, default=None,
                        help="seconds to keep the window after the session ends "
                             "(default: until q in a window, 0 in a terminal)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop (drain) after this many seconds")
    parser.add_argument("--record-dir", type=Path, default=Path("."),
                        help="where the r key writes sessions")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from streamkit.ui.app import DemoOptions, run_demo

    options = DemoOptions(
        session=args.session, live=args.live, pipeline=args.pipeline, window=args.window,
        speed=args.speed, snapshot=args.snapshot, linger=args.linger,
        max_seconds=args.max_seconds, record_dir=args.record_dir,
        assistant=assistant_config(args),
    )
    try:
        return run_demo(options)
    except (RuntimeError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
