"""``streamkit report SESSION``: PNG + HTML latency timeline of a recorded session.

A session recorded from devices holds only media; record one with events and metrics with
``streamkit replay SESSION --out run.mcap`` (or ``--run`` here, which does exactly that on
virtual time first) and report on that.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamkit.commands.errors import UserError
from streamkit.commands.model_options import (
    add_model_arguments,
    add_pipeline_argument,
    assistant_config,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", nargs="?", type=Path, default=None,
                        help="MCAP session (default: the bundled session)")
    parser.add_argument("-o", "--out", type=Path, default=Path("report"),
                        help="output path without suffix: writes OUT.png and OUT.html")
    parser.add_argument("--run", action="store_true",
                        help="first replay the session through the best pipeline on virtual "
                             "time (recorded next to OUT as OUT.mcap), then report on that")
    add_pipeline_argument(parser, "auto", auto=True, what="with --run: the pipeline it runs")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from streamkit.record.mcap import default_session_path

    session: Path = args.session or default_session_path()
    if not session.exists():
        raise UserError(f"no session file at {session} (record one with `streamkit record`)")
    from streamkit.record.report import has_events

    try:
        media_only = not args.run and not has_events(session)
    except ValueError as error:
        raise UserError(str(error)) from None
    if media_only:
        print(f"streamkit report: {session} holds only media (as `streamkit record` writes): "
              "running the pipeline on it first, on virtual time (--run)", file=sys.stderr)
        args.run = True
    if args.run:
        from rich.console import Console

        from streamkit.commands.replay import replay_session
        from streamkit.testing.replay import run_on_virtual_loop

        ran = args.out.with_suffix(".mcap")
        ran.parent.mkdir(parents=True, exist_ok=True)
        run_on_virtual_loop(replay_session(session, pipeline=args.pipeline, virtual=True,
                                           out=ran, console=Console(),
                                           config=assistant_config(args)))
        session = ran
    from streamkit.record.report import write_report

    try:
        png, page = write_report(session, args.out)
    except ValueError as error:
        raise UserError(str(error)) from None
    print(f"wrote {png} and {page}")
    return 0
