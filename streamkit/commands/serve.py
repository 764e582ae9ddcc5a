"""``streamkit serve``: the assistant over WebSocket, and the browser client on the same port.

Models load once at start (Whisper, the language model) and are shared by every session.
Pipelines offered (a client picks one with ``session.update``):

- ``assistant``: ASR + vision + language model (:mod:`pipelines.assistant`);
- ``captions``: the same ASR, no language model (transcripts only, cheap);
- ``echo``: no model at all (counts audio, streams a fake answer): protocol checks.

Binding beyond loopback (``127.0.0.0/8``, ``::1``, ``localhost``) requires ``--token``. Open
``http://HOST:PORT/`` for the browser client.

SIGTERM (``docker stop``, systemd, Kubernetes) and SIGINT (Ctrl-C) stop the server the same
way: no new sessions, each live answer ends with ``response.done`` (``cancelled: true``), every
client gets close code 1001, exit status 0. A second signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from streamkit.commands import heap
from streamkit.commands.logs import add_log_arguments, configure_logging
from streamkit.commands.model_options import (
    add_model_arguments,
    add_pipeline_argument,
    assistant_config,
)
from streamkit.commands.serve_deploy import (
    add_deploy_arguments,
    build_deployment,
    check_deployment,
    run_workers,
)
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.transport.echo import echo_factory
from streamkit.transport.limits import Limits
from streamkit.transport.protocol import SessionConfig
from streamkit.transport.server import Server, ServerOptions
from streamkit.transport.session import DeviceSourceFactory, PipelineFactory, SessionControls

__all__ = ["add_arguments", "build_pipelines", "run"]

HELP = "serve the assistant over WebSocket (and the browser client)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: any free port)")
    parser.add_argument(
        "--token",
        default=os.environ.get("STREAMKIT_TOKEN"),
        help="auth token clients must present (required beyond loopback; env STREAMKIT_TOKEN)",
    )
    parser.add_argument(
        "--origin", action="append", default=[], help="extra allowed browser Origin (repeat)"
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="extra name clients reach the server by (Host header, e.g. behind a proxy; repeat)",
    )
    add_pipeline_argument(
        parser, "assistant", what="the default pipeline of a session (clients may pick another)"
    )
    add_model_arguments(parser)
    parser.add_argument("--no-models", action="store_true", help="offer only the echo pipeline")
    parser.add_argument("--devices", action="store_true", help="allow source=devices (server mic)")
    parser.add_argument("--max-sessions", type=int, default=16, help="concurrent sessions")
    parser.add_argument("--send-deadline-ms", type=int, default=Limits().send_deadline_ms)
    parser.add_argument("--port-file", default=None, help="write the bound port here once up")
    parser.add_argument(
        "--metrics-session-labels",
        action="store_true",
        help="label /metrics gauges by session id (unbounded series: debugging only)",
    )
    add_log_arguments(parser)
    add_deploy_arguments(parser)


Warmup = Callable[[], Awaitable[None]]


def build_pipelines(args: argparse.Namespace) -> tuple[dict[str, PipelineFactory], list[Warmup]]:
    """Load the models once; return the session factories and the warm-ups to run before
    the first client (blocking: seconds)."""
    pipelines: dict[str, PipelineFactory] = {"echo": echo_factory()}
    if args.no_models:
        return pipelines, []
    from streamkit.pipelines import assistant

    config = assistant_config(args)
    models = assistant.Models.load(config)
    captions_models = assistant.Models(whisper=models.whisper, lm=None)

    def make(cfg: Any, mdl: Any) -> PipelineFactory:
        def factory(
            source: Stage, sink: Stage, metrics: MetricsRegistry
        ) -> tuple[Pipeline, SessionControls]:
            return assistant.build(cfg, mdl, source, sink, metrics=metrics)

        return factory

    pipelines["captions"] = make(config, captions_models)
    warmups: list[Warmup] = []
    if models.lm is not None:
        pipelines["assistant"] = make(config, models)
        # the first answer and the shared prompt prefix cost seconds: not in a session
        warmups.append(partial(models.warmup, config))
    return pipelines, warmups


def _device_source(args: argparse.Namespace) -> DeviceSourceFactory | None:
    if not args.devices:
        return None
    from streamkit.sources.mic import MicSource

    def open_devices(metrics: MetricsRegistry) -> Stage:
        return MicSource()

    return open_devices


def on_shutdown_signals(stop: Callable[[], None], drain: Callable[[], None] | None = None) -> None:
    """Call ``stop`` on the first SIGTERM or SIGINT; the next one acts as by default (exit).
    With ``drain``, SIGTERM calls it instead of ``stop`` (graceful drain; see
    :meth:`~streamkit.transport.server.Server.drain`)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def first(sig: signal.Signals) -> None:
        for each in signals:
            loop.remove_signal_handler(each)
        if drain is not None and sig == signal.SIGTERM:
            drain()
        else:
            stop()

    for sig in signals:
        with contextlib.suppress(NotImplementedError):  # no signal handlers on this loop
            loop.add_signal_handler(sig, first, sig)


async def _serve(
    args: argparse.Namespace, pipelines: dict[str, PipelineFactory], warmups: list[Warmup]
) -> None:
    stopping = asyncio.Event()
    draining = asyncio.Event()

    def drain() -> None:  # SIGTERM: drain first (see Server.drain), then stop
        draining.set()
        stopping.set()

    on_shutdown_signals(stopping.set, drain)
    deployment = build_deployment(args)
    default = args.pipeline if args.pipeline in pipelines else sorted(pipelines)[0]
    options = ServerOptions(
        host=args.host,
        port=args.port,
        token=args.token,
        origins=tuple(args.origin),
        hosts=tuple(args.allow_host),
        limits=Limits(send_deadline_ms=args.send_deadline_ms),
        config=SessionConfig(pipeline=default),
        max_sessions=args.max_sessions,
        metrics_session_labels=args.metrics_session_labels,
    )
    options.reuse_port = bool(args.reuse_port)
    server = Server(pipelines, options, device_source=_device_source(args), deployment=deployment)
    deployment.models_loaded = False  # /readyz says "loading" until the warm-ups are done
    async with server.running(), heap.trimming():  # native heap bounded (commands/heap.py)
        for warmup in warmups:
            await warmup()
        deployment.models_loaded = True
        shown = "localhost" if args.host in ("127.0.0.1", "::1") else args.host
        print(
            f"streamkit: serving {sorted(pipelines)} (default {default}) on "
            f"ws://{shown}:{server.port}/ws — browser client http://{shown}:{server.port}/",
            flush=True,
        )
        print(
            f"streamkit: OpenAI Realtime clients: base URL ws://{shown}:{server.port}/v1 "
            "(docs/realtime.md)",
            flush=True,
        )
        if args.port_file:
            await asyncio.to_thread(Path(args.port_file).write_text, str(server.port))
        await stopping.wait()
        if draining.is_set():  # SIGTERM: finish the turns in flight, then 1001 (resume)
            await server.drain()
    # leaving running(): answers cut short (response.done, cancelled), every client 1001


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_json)
    try:
        options_check = ServerOptions(host=args.host, token=args.token)
        Server({"echo": echo_factory()}, options_check)
    except ValueError as error:
        print(f"streamkit serve: {error} (pass --token or set STREAMKIT_TOKEN)", file=sys.stderr)
        return 2
    if args.workers > 1:
        if args.port == 0:
            print("streamkit serve: --workers needs a fixed --port", file=sys.stderr)
            return 2
        argv = sys.argv[sys.argv.index("serve") + 1 :] if "serve" in sys.argv else []
        return run_workers(argv, args.workers)
    try:  # a bad --store or a missing package: say so before loading models
        check_deployment(args)
    except Exception as error:
        print(f"streamkit serve: {error}", file=sys.stderr)
        return 2
    try:
        if "MALLOC_ARENA_MAX" not in os.environ:  # before the model threads start
            heap.limit_arenas(2)
        pipelines, warmups = build_pipelines(args)
    except Exception as error:  # a missing model or runtime: say what and stop
        print(f"streamkit serve: cannot load the models: {error}", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args, pipelines, warmups))
    return 0
