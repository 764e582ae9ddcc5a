"""``streamkit`` command line: a thin dispatcher over ``streamkit.commands.<name>``.

Each command module defines ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``
and is imported only when its command runs, so heavy dependencies (models, OpenCV windows)
load only where needed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, str] = {
    "demo": "run the assistant: live devices, or the bundled session when there are none",
    "transcribe": "transcribe a media file (offline, or --stream through the streaming ASR)",
    "serve": "serve the assistant over WebSocket (and the browser client)",
    "client": "stream a file or the microphone to a server and print what comes back",
    "record": "record a session (devices or files) into an MCAP file",
    "replay": "replay a recorded MCAP session through a pipeline",
    "report": "write a latency report (PNG/HTML timeline) for a recorded session",
}


class _Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> _Command:
    return cast(_Command, importlib.import_module(f"streamkit.commands.{name}"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="streamkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).add_arguments(cmd_parser)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return _load(args.command).run(args)


if __name__ == "__main__":
    sys.exit(main())
