"""``streamkit serve`` behind a load balancer: store, drain, traces, several workers.

Options (each also an environment variable, so one container image serves every role;
see ``docs/deploy.md``):

- ``--store URL`` (``STREAMKIT_STORE``): ``redis://host:6379/0`` keeps session records in
  Redis so any worker resumes any session; default in-process (``memory://``: a session
  survives a reconnect to this worker only, and ``/readyz`` says ``"store": "memory"``);
- ``--session-ttl-s`` (``STREAMKIT_SESSION_TTL_S``): a record expires this long after its
  last save;
- ``--drain-deadline-s`` (``STREAMKIT_DRAIN_DEADLINE_S``): SIGTERM waits this long for turns
  in flight before closing sessions with 1001;
- ``--otlp-endpoint URL`` (``OTEL_EXPORTER_OTLP_ENDPOINT``): export a trace per turn over
  OTLP/HTTP; off when not given;
- ``--workers N``: N worker processes on one port (SO_REUSEPORT, each with its own models);
  SIGTERM/SIGINT are passed on to every worker.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from types import FrameType

from streamkit.transport.deployment import Deployment, DeploymentOptions

__all__ = ["add_deploy_arguments", "build_deployment", "check_deployment", "run_workers"]


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def add_deploy_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("deployment (load balancer, Redis, traces)")
    group.add_argument(
        "--store",
        default=os.environ.get("STREAMKIT_STORE", "memory://"),
        help="session store: redis://host:6379/0 (resume on any worker) or memory:// "
        "(this process only); env STREAMKIT_STORE",
    )
    group.add_argument(
        "--session-ttl-s",
        type=float,
        default=_env_float("STREAMKIT_SESSION_TTL_S", 3600.0),
        help="a stored session expires this long after its last save",
    )
    group.add_argument(
        "--drain-deadline-s",
        type=float,
        default=_env_float("STREAMKIT_DRAIN_DEADLINE_S", 30.0),
        help="on SIGTERM, wait this long for turns in flight before closing with 1001",
    )
    group.add_argument(
        "--otlp-endpoint",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        help="OTLP/HTTP collector (http://host:4318): one trace per turn; off if unset",
    )
    group.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port (SO_REUSEPORT), each with its own models",
    )
    group.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)


def build_deployment(args: argparse.Namespace) -> Deployment:
    """The worker's deployment from the options. Raises ``StoreUnavailable`` /
    ``TelemetryUnavailable`` with a message that says what to install."""
    from streamkit.store import open_store

    store = open_store(args.store, args.session_ttl_s)
    exporter = None
    if args.otlp_endpoint:
        from streamkit.core.clock import LoopClock
        from streamkit.telemetry.otlp import TraceExporter

        exporter = TraceExporter(LoopClock(), endpoint=args.otlp_endpoint)
    return Deployment(DeploymentOptions(store, args.drain_deadline_s, exporter))


def check_deployment(args: argparse.Namespace) -> None:
    """Raise with a one-line reason when the options cannot work (store URL, packages)."""
    import importlib.util

    from streamkit.store import open_store
    from streamkit.store.backend import StoreUnavailable

    open_store(args.store, args.session_ttl_s)
    if args.otlp_endpoint and importlib.util.find_spec("opentelemetry.sdk") is None:
        raise StoreUnavailable(
            "--otlp-endpoint needs the OpenTelemetry SDK: pip install 'streamkit[deploy]'"
        )


def run_workers(argv: list[str], workers: int) -> int:
    """Run ``workers`` copies of ``streamkit serve`` on one port (SO_REUSEPORT); pass
    SIGTERM/SIGINT on to each and wait for all. Returns the worst exit status."""
    cmd = [sys.executable, "-m", "streamkit", "serve", *_strip_workers(argv), "--reuse-port"]
    children = [subprocess.Popen(cmd) for _ in range(workers)]

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max((abs(c) for c in codes), default=0)


def _strip_workers(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return out
