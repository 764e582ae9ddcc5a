"""The WebSocket server: sessions over ``websockets``, the browser client over plain HTTP.

One port serves both: ``GET /ws`` upgrades to a WebSocket session (protocol v1, see
:mod:`streamkit.transport.protocol`); any other ``GET`` serves the browser client's static
files (``transport/static``); ``GET /metrics`` answers Prometheus text for every live
session (label ``session``; the auth token applies). Each connection is one
:class:`~streamkit.transport.session.Session` with its own pipeline and task group; models
live in the pipeline factories and are shared.

Hardening (see ``docs/protocol.md``):

- binds to loopback by default (any of ``127.0.0.0/8``, ``::1``, ``localhost``); binding
  anywhere else requires an auth token, which clients pass as ``?token=…`` or
  ``Authorization: Bearer …`` (HTTP 401 otherwise; see :mod:`~streamkit.transport.access`);
- every request's ``Host`` must be a name the server is known by (DNS rebinding; HTTP 403);
- ``Origin`` must be absent (non-browser clients), the server's own origin (same host), or in
  the allow-list (HTTP 403 otherwise);
- on shutdown every session's answer is cut short (``response.done`` with ``cancelled:
  true``) and the session closed with 1001 (:meth:`Server.close_sessions`);
- frames over ``limits.max_frame_bytes`` are refused by the transport (close 1009); smaller
  but over-limit messages, bad ones and rate-limited ones get an ``error`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from streamkit.core.clock import NS_PER_S, Clock, LoopClock
from streamkit.telemetry.prometheus import ServerMetrics
from streamkit.transport.access import (
    host_allowed,
    is_loopback,
    origin_allowed,
    split_host,
    token_ok,
)
from streamkit.transport.codecs.realtime import RealtimeCodec
from streamkit.transport.deployment import DRAIN_REASON, Deployment
from streamkit.transport.limits import Limits
from streamkit.transport.protocol import SessionConfig
from streamkit.transport.session import Codec, DeviceSourceFactory, PipelineFactory, Session

__all__ = ["STATIC_DIR", "Server", "ServerOptions", "is_loopback"]

STATIC_DIR = Path(__file__).parent / "static"
METRICS_PATH = "/metrics"
PROMETHEUS_TYPE = "text/plain"  # + "; charset=utf-8" from _response; format 0.0.4
WS_PATH = "/ws"
REALTIME_PATH = "/v1/realtime"  # the OpenAI Realtime protocol (docs/realtime.md)
REALTIME_SUBPROTOCOL = "realtime"
_KEY_SUBPROTOCOL = "openai-insecure-api-key."

log = logging.getLogger("streamkit.server")

CLOSE_REASONS: dict[int, str] = {
    1000: "closed",
    1001: "going_away",
    1005: "closed",
    1006: "connection_lost",
    1009: "message_too_big",
    1011: "pipeline_error",
    4003: "slow_consumer",
    4008: "protocol_errors",
}
"""Close code → the bounded ``reason`` of the session-end log line and metric."""


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address or "?")


@dataclass
class ServerOptions:
    """How the server listens and what each session may do.

    ``port`` 0 picks a free port (read :attr:`Server.port`). ``token`` is required when
    ``host`` is not loopback. ``origins``: extra allowed ``Origin`` values (e.g.
    ``"https://app.example"``). ``hosts``: extra names clients reach the server by (the
    ``Host`` header behind a reverse proxy, e.g. ``"app.example"``).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    origins: Sequence[str] = ()
    limits: Limits = field(default_factory=Limits)
    config: SessionConfig = field(default_factory=SessionConfig)
    static_dir: Path | None = STATIC_DIR
    close_timeout_s: float = 2.0
    max_sessions: int = 16
    ping_interval_s: float | None = 20.0
    hosts: Sequence[str] = ()
    metrics_session_labels: bool = False
    """Also label live sessions' gauges in ``/metrics`` by session id (debugging only)."""
    reuse_port: bool = False
    """SO_REUSEPORT: several worker processes listen on one port (``serve --workers``)."""


class Server:
    """Serves sessions; use ``async with server.running(): ...`` or :meth:`serve_forever`.

    Args:
        pipelines: pipeline name → factory (``session.update`` picks one by name).
        options: listening address, auth, limits, defaults.
        device_source: opens the server's capture devices for ``source: "devices"``.
    """

    def __init__(
        self,
        pipelines: Mapping[str, PipelineFactory],
        options: ServerOptions | None = None,
        device_source: DeviceSourceFactory | None = None,
        clock: Clock | None = None,
        deployment: Deployment | None = None,
    ) -> None:
        self.options = options or ServerOptions()
        self.deployment = deployment if deployment is not None else Deployment(clock=clock)
        """Readiness, drain, session store, telemetry (:mod:`~streamkit.transport.deployment`)."""
        if not is_loopback(self.options.host) and not self.options.token:
            raise ValueError(
                f"binding to {self.options.host!r} (not loopback) requires an auth token"
            )
        if not pipelines:
            raise ValueError("the server needs at least one pipeline factory")
        self.pipelines = dict(pipelines)
        config = self.options.config
        if config.pipeline not in self.pipelines:
            config = SessionConfig(pipeline=sorted(self.pipelines)[0])
            self.options.config = config
        self.device_source = device_source
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self.finished: list[Session] = []
        self._ws: WsServer | None = None
        self._closing = False
        self.prom = ServerMetrics(session_labels=self.options.metrics_session_labels)
        """Server-wide Prometheus series (``GET /metrics``), folded from every session."""

    @property
    def port(self) -> int:
        """The bound TCP port (valid while running)."""
        if self._ws is None:
            raise RuntimeError("the server is not running")
        sock = next(iter(self._ws.sockets))
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        """``ws://host:port/ws`` of the running server."""
        return f"ws://{self.options.host}:{self.port}{WS_PATH}"

    @property
    def realtime_url(self) -> str:
        """The base URL an OpenAI Realtime client is given (``ws://host:port/v1``)."""
        return f"ws://{self.options.host}:{self.port}{REALTIME_PATH.removesuffix('/realtime')}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Server]:
        """Listen while the block runs; on exit close every session (1001) and wait for it."""
        opts = self.options
        async with serve(
            self._handle,
            opts.host,
            opts.port,
            process_request=self._process_request,
            max_size=opts.limits.max_frame_bytes,
            max_queue=32,
            close_timeout=opts.close_timeout_s,
            ping_interval=opts.ping_interval_s,
            server_header="streamkit",
            reuse_port=opts.reuse_port or None,
            select_subprotocol=_select_subprotocol,
        ) as ws_server:
            self._ws = ws_server
            failed: BaseException | None = None  # the block's own error, raised as is
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self.deployment.run_telemetry(), name="telemetry")
                    try:
                        yield self
                    except BaseException as error:
                        failed = error
                    finally:
                        await self.close_sessions()
                        ws_server.close(close_connections=True)
                        await ws_server.wait_closed()
                        self.deployment.close()
            finally:
                self._ws = None
            if failed is not None:
                raise failed

    async def drain(self) -> None:
        """Graceful drain (SIGTERM): readiness false and new sessions refused at once, the
        turns in flight finish (up to the deployment's deadline), then every session is
        closed with 1001 and a reason telling the client to reconnect and resume."""
        await self.deployment.drain(self.sessions)
        await self.close_sessions(1001, DRAIN_REASON)

    async def serve_forever(self) -> None:
        """Listen until cancelled."""
        async with self.running():
            await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the listening server is closed (inside :meth:`running`)."""
        if self._ws is not None:
            await self._ws.wait_closed()

    async def close_sessions(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Refuse new sessions (503), cut every live session's answer short (its client gets
        ``response.done`` with ``cancelled: true``) and close each with ``code`` once its
        queued events went out (bounded per session by the send deadline and close timeout).
        """
        self._closing = True
        live = list(self.sessions.values())
        if live:
            async with asyncio.TaskGroup() as group:
                for session in live:
                    name = f"shutdown:{session.id}"
                    group.create_task(session.shutdown(code, reason), name=name)

    # -- per connection ------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path if ws.request is not None else WS_PATH)
        codec: Codec | None = None  # None: /ws
        if url.path == REALTIME_PATH:
            codec = RealtimeCodec(model=parse_qs(url.query).get("model", [None])[0])
        keeper = await self.deployment.keeper(ws.request.path if ws.request else "")
        session = Session(
            ws,
            keeper.wrap(self.pipelines),
            keeper.config(self.options.config),
            self.options.limits,
            self.device_source,
            self.clock,
            self.options.close_timeout_s,
            codec,
        )
        self.deployment.attach(session, keeper)
        stale = self.sessions.get(session.id)
        if stale is not None:  # resumed here while the old connection lingers: drop it
            stale.ws.transport.abort()
        self.sessions[session.id] = session
        self.prom.session_started()
        clock = self.clock or LoopClock()
        began = clock.now()
        peer = _peer(ws)
        log.info("session %s started: peer %s, path %s", session.id, peer, url.path,
                 extra={"event": "session.start", "session": session.id, "peer": peer})
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(keeper.run(), name=f"keeper:{session.id}")
                try:
                    await session.run()
                finally:
                    keeper.close()
        finally:
            if self.sessions.get(session.id) is session:
                del self.sessions[session.id]
            self.deployment.detach(session, keeper)
            self._ended(session, peer, (clock.now() - began) / NS_PER_S)
            self.finished.append(session)
            del self.finished[:-64]

    def _ended(self, session: Session, peer: str, duration_s: float) -> None:
        code = session.close_code or session.ws.close_code
        reason = CLOSE_REASONS.get(code or 0, "other")
        pipeline = session.config.pipeline
        turns = sum("asr.final" in m for m in session.metrics.lineage.snapshot().values())
        self.prom.session_ended(session.id, session.metrics, pipeline=pipeline, reason=reason,
                                duration_s=duration_s)
        log.info(
            "session %s ended: peer %s, pipeline %s, %.1f s, %d turns, %d errors, %s (%s)",
            session.id, peer, pipeline, duration_s, turns, session.errors, reason, code,
            extra={"event": "session.end", "session": session.id, "peer": peer,
                   "pipeline": pipeline, "duration_s": round(duration_s, 3), "turns": turns,
                   "errors": session.errors, "reason": reason, "close_code": code},
        )

    def _refuse(self, connection: ServerConnection, request: Request, status: HTTPStatus,
                reason: str) -> Response:
        """Answer a refused handshake or request: count it, log one line, say why."""
        self.prom.refused(status.value)
        peer, path = _peer(connection), request.path.split("?")[0]
        log.warning("refused %s from %s: %d %s", path, peer, status.value, reason,
                    extra={"event": "refused", "status": status.value, "reason": reason,
                           "peer": peer, "path": path})
        return connection.respond(status, reason + "\n")

    # -- HTTP side -----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        probe = self.deployment.probe(
            connection, url.path, len(self.sessions), self.options.max_sessions
        )
        if probe is not None:  # /healthz, /readyz: counts only, for balancers and kubelets
            return probe
        if not self._host_ok(request):
            return self._refuse(connection, request, HTTPStatus.FORBIDDEN, "host not allowed")
        if url.path in (WS_PATH, REALTIME_PATH):
            if not self._authorized(request, url.query, url.path == REALTIME_PATH):
                return self._refuse(
                    connection, request, HTTPStatus.UNAUTHORIZED, "missing or wrong token"
                )
            if not self._origin_ok(request):
                return self._refuse(
                    connection, request, HTTPStatus.FORBIDDEN, "origin not allowed"
                )
            if self._closing:
                return self._refuse(
                    connection, request, HTTPStatus.SERVICE_UNAVAILABLE, "shutting down"
                )
            refusal = self.deployment.refusal()
            if refusal is not None:  # loading models or draining
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, refusal)
            if len(self.sessions) >= self.options.max_sessions:
                return self._refuse(
                    connection, request, HTTPStatus.SERVICE_UNAVAILABLE, "server full"
                )
            return None
        if url.path == METRICS_PATH:
            if not self._authorized(request, url.query):
                return self._refuse(
                    connection, request, HTTPStatus.UNAUTHORIZED, "missing or wrong token"
                )
            return _response(HTTPStatus.OK, self.prometheus().encode(), PROMETHEUS_TYPE)
        return self._static(url.path)

    def prometheus(self) -> str:
        """Prometheus text exposition: server-wide series folded from every session, live
        or ended (:mod:`streamkit.telemetry.prometheus`; no session label unless opted in), then the
        deployment's (readiness, telemetry)."""
        text = self.prom.render({sid: s.metrics for sid, s in self.sessions.items()})
        return text + self.deployment.prometheus(len(self.sessions), self.options.max_sessions)

    def _authorized(self, request: Request, query: str, realtime: bool = False) -> bool:
        """The token rules of :func:`~streamkit.transport.access.token_ok`; a Realtime
        client may pass the token as its API key in the ``openai-insecure-api-key.<key>``
        subprotocol (browsers cannot set headers)."""
        authorization = request.headers.get_all("Authorization")
        if realtime:
            offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol")).split(",")
            keys = [p.strip() for p in offered if p.strip().startswith(_KEY_SUBPROTOCOL)]
            authorization = [
                *authorization,
                *(f"Bearer {k[len(_KEY_SUBPROTOCOL) :]}" for k in keys),
            ]
        return token_ok(self.options.token, query, authorization)

    def _host_ok(self, request: Request) -> bool:
        """``Host`` names this server (DNS rebinding: see :mod:`~streamkit.transport.access`)."""
        hosts = request.headers.get_all("Host")
        parsed = split_host(hosts[0]) if len(hosts) == 1 else None
        return parsed is not None and host_allowed(parsed[0], self.options.host, self.options.hosts)

    def _origin_ok(self, request: Request) -> bool:
        """No ``Origin``, an allowed one, or the page's own (its ``Host`` passed first)."""
        origins = request.headers.get_all("Origin")
        if not origins:
            return True
        host = request.headers.get_all("Host")
        return len(origins) == 1 and origin_allowed(origins[0], host[0], self.options.origins)

    def _static(self, path: str) -> Response:
        root = self.options.static_dir
        name = "index.html" if path in ("", "/") else path.lstrip("/")
        if root is None or "/" in name or name.startswith("."):
            return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        target = root / name
        if not target.is_file():
            return _response(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".js"):
            ctype = "text/javascript"
        return _response(HTTPStatus.OK, target.read_bytes(), ctype)


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """``realtime`` when a Realtime client offers it (browsers fail a handshake that ignores
    every offered subprotocol); no subprotocol otherwise (``/ws`` clients offer none)."""
    return Subprotocol(REALTIME_SUBPROTOCOL) if REALTIME_SUBPROTOCOL in offered else None


def _response(status: HTTPStatus, body: bytes, ctype: str) -> Response:
    headers = Headers()
    headers["Content-Type"] = f"{ctype}; charset=utf-8" if ctype.startswith("text/") else ctype
    headers["Content-Length"] = str(len(body))
    headers["Cache-Control"] = "no-store"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Connection"] = "close"
    return Response(status.value, status.phrase, headers, body)
