"""``streamkit`` command line: a thin dispatcher over ``streamkit.commands.<name>``.

Each command module defines ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``
and is imported only when its command runs, so heavy dependencies (models, OpenCV windows)
load only where needed.

Errors: a command raises :class:`~streamkit.commands.errors.UserError` (or returns non-zero)
for a mistake it can name; any other exception is printed as one line too. Either way the
exit status is non-zero and a traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from streamkit.commands.errors import UserError, describe

__all__ = ["COMMANDS", "DESCRIPTIONS", "main"]

DESCRIPTION = (
    "streamkit: a real-time multimodal assistant on your own machine — speech in, answers "
    "out, with the latency of every turn. Start with `streamkit demo`, or `streamkit serve` "
    "and open http://localhost:8765/. `streamkit COMMAND --help` for each command."
)

COMMANDS: dict[str, str] = {
    "demo": "run the assistant: live devices, or the bundled session when there are none",
    "transcribe": "transcribe a media file (offline, or --stream through the streaming ASR)",
    "serve": "serve the assistant over WebSocket (and the browser client)",
    "client": "stream a file or the microphone to a server and print every turn",
    "record": "record a session (devices or files) into an MCAP file",
    "replay": "replay a recorded MCAP session through a pipeline",
    "report": "write a latency report (PNG/HTML timeline) for a recorded session",
}
"""Command name → its one-line summary (``streamkit --help``)."""

DESCRIPTIONS: dict[str, str] = {
    "demo": "Run the assistant on your camera and microphone, or on the bundled recorded "
    "session when there are none, in a window (or the terminal).",
    "transcribe": "Transcribe the audio track of a media file: offline (whole file), or "
    "--stream through the streaming ASR as it would run live.",
    "serve": "Serve the assistant over WebSocket, and the browser client on the same port "
    "(open http://localhost:8765/).",
    "client": "Stream a file (audio, and video when it has some) or the microphone to a "
    "server and print every turn: what was heard, the answer, its latency.",
    "record": "Record a session from your devices or from media files into an MCAP file.",
    "replay": "Play a recorded MCAP session through a pipeline and print what it heard and "
    "answered, with the latencies.",
    "report": "Write a latency report (PNG timeline + HTML) of a recorded session.",
}
"""Command name → the description at the top of ``streamkit COMMAND --help``."""


class _Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help (not for flags or unset options);
    descriptions keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, "", [], argparse.SUPPRESS) or "%(default)" in (
            action.help or ""
        ):
            return action.help
        return super()._get_help_string(action)


def _load(name: str) -> _Command:
    return cast(_Command, importlib.import_module(f"streamkit.commands.{name}"))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("streamkit")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        from streamkit import __version__

        return __version__


def _parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamkit", description=DESCRIPTION, formatter_class=_Formatter
    )
    parser.add_argument("--version", action="version", version=f"streamkit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        cmd = sub.add_parser(
            name, help=summary, description=DESCRIPTIONS[name], formatter_class=_Formatter
        )
        cmd.add_argument(
            "--debug", action="store_true", help="show the full traceback when something fails"
        )
        if name == chosen:
            _load(name).add_arguments(cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = _parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _load(args.command).run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as raised:  # one clear line; the traceback only with --debug
        if args.debug:
            raise
        error = _leaf(raised)
        if isinstance(error, UserError):
            print(f"streamkit {args.command}: {error}", file=sys.stderr)
            return error.exit_code
        known = describe(error)
        if known is not None:
            print(f"streamkit {args.command}: {known}", file=sys.stderr)
            return 1
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(f"streamkit {args.command}: {type(error).__name__}: {text} "
              "(--debug shows the traceback)", file=sys.stderr)
        return 1


def _leaf(error: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups from task groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


if __name__ == "__main__":
    sys.exit(main())
