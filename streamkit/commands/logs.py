"""Log lines of the long-running commands (``serve``): plain text or one JSON object a line.

``--log-level`` sets the threshold (``info`` shows one line per session start/end, refusal
and error; ``warning`` only refusals and failures). ``--log-json`` writes each record as a
JSON object with ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg`` and the record's
structured fields (``event``, ``session``, ``peer``, ``pipeline``, ``duration_s``, ``turns``,
``reason``, ``status``, ``code`` — whatever the call passed as ``extra``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "add_log_arguments", "configure_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"],
        help="least severe log lines shown (info: one line per session start/end and refusal)",
    )
    group.add_argument(
        "--log-json", action="store_true", help="log one JSON object per line (to stderr)"
    )


def configure_logging(level: str = "info", as_json: bool = False) -> None:
    """Log to stderr at ``level``; third-party libraries only from ``warning`` up."""
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("streamkit").setLevel(level.upper())
