"""What a worker behind a load balancer needs: readiness, drain, the session store, telemetry.

The :class:`~streamkit.transport.server.Server` holds one :class:`Deployment` and calls it
at a few points: every HTTP probe (``/healthz``, ``/readyz``), every WebSocket upgrade
(refused with 503 while loading or draining), every new connection (a
:class:`~streamkit.transport.keeper.SessionKeeper` that resumes or starts the session), the
``/metrics`` scrape (readiness gauges) and shutdown.

Drain (SIGTERM): readiness goes false at once — a balancer's next ``/readyz`` check takes
this worker out of rotation and new upgrades get 503 — then each session's turns that were
in flight when the drain began finish (answer included) or the deadline passes, and only
then are the sessions closed with 1001 and a reason saying to reconnect; a resuming client
reconnects through the balancer to another worker and carries on (its history is in the
store). Deadlines come from the shared clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response

from streamkit.core.clock import NS_PER_S, Clock, LoopClock, Nanos
from streamkit.core.packet import Packet
from streamkit.store.backend import SessionStore
from streamkit.store.memory import MemoryStore
from streamkit.telemetry.turns import trace_edge, trace_of
from streamkit.transport.health import HEALTH_PATH, READY_PATH, Readiness, readiness
from streamkit.transport.keeper import SessionKeeper, parse_resume

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from streamkit.telemetry.otlp import TraceExporter
    from streamkit.transport.session import Session

__all__ = ["DRAIN_REASON", "Deployment", "DeploymentOptions"]

DRAIN_REASON = "server draining: reconnect to resume this session"
"""The 1001 close reason after a drain (clients with ``resume`` reconnect on 1001)."""


@dataclass
class DeploymentOptions:
    """Worker settings for running behind a balancer.

    Attributes:
        store: where session records live (default: in this process only).
        drain_deadline_s: how long a drain waits for turns in flight.
        exporter: an OpenTelemetry trace exporter (None: traces off).
    """

    store: SessionStore = field(default_factory=MemoryStore)
    drain_deadline_s: float = 30.0
    exporter: TraceExporter | None = None


class Deployment:
    """One worker's readiness, drain, store and telemetry (see the module docstring)."""

    def __init__(self, options: DeploymentOptions | None = None, clock: Clock | None = None):
        self.options = options or DeploymentOptions()
        self.store = self.options.store
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.models_loaded = True
        self.draining = False
        self.keepers: dict[str, SessionKeeper] = {}
        self.traces = trace_edge()
        self.drained_sessions = 0

    # -- probes --------------------------------------------------------------------------

    def readiness(self, sessions: int, max_sessions: int) -> Readiness:
        return readiness(
            models_loaded=self.models_loaded,
            draining=self.draining,
            sessions=sessions,
            max_sessions=max_sessions,
            store=self.store.name,
        )

    def probe(
        self, connection: ServerConnection, path: str, sessions: int, max_sessions: int
    ) -> Response | None:
        """The response to ``/healthz`` or ``/readyz`` (None for any other path)."""
        if path not in (HEALTH_PATH, READY_PATH):
            return None
        state = self.readiness(sessions, max_sessions)
        ok = path == HEALTH_PATH or state.ready
        status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
        body = state.body()
        headers = Headers()
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
        headers["Cache-Control"] = "no-store"
        headers["Connection"] = "close"
        return Response(status.value, status.phrase, headers, body)

    def refusal(self) -> str | None:
        """Why a new WebSocket session is refused now (HTTP 503), or None."""
        if not self.models_loaded:
            return "loading models\n"
        if self.draining:
            return "draining\n"
        return None

    def prometheus(self, sessions: int, max_sessions: int) -> str:
        text = self.readiness(sessions, max_sessions).prometheus()
        stats = self.traces.stats()
        return text + (
            "# HELP streamkit_telemetry_dropped_total Turn traces dropped (exporter behind).\n"
            "# TYPE streamkit_telemetry_dropped_total counter\n"
            f"streamkit_telemetry_dropped_total {stats.dropped}\n"
        )

    # -- sessions ------------------------------------------------------------------------

    async def keeper(self, request_path: str) -> SessionKeeper:
        """A keeper for a new connection: resumes the session its query names, if stored."""
        resume = parse_resume(urlsplit(request_path).query)
        return await SessionKeeper.open(self.store, self.clock, resume)

    def attach(self, session: Session, keeper: SessionKeeper) -> None:
        """Follow ``session``'s lineage: saves via the keeper, a trace per finished turn."""
        keeper.attach(session)
        self.keepers[session.id] = keeper
        lineage = session.metrics.lineage

        def on_mark(uid: str, event: str, t: Nanos) -> None:
            if keeper.on_mark(uid, event):
                trace = trace_of(session.id, uid, lineage.get(uid))
                if trace is not None:
                    self.traces.put_nowait(Packet("trace", keeper.tracker.completed, t, 0, trace))

        lineage.listen(on_mark)

    def detach(self, session: Session, keeper: SessionKeeper) -> None:
        if self.keepers.get(session.id) is keeper:
            del self.keepers[session.id]

    # -- background ----------------------------------------------------------------------

    async def run_telemetry(self) -> None:
        """Export finished turns' traces (when configured) until the trace edge is closed."""
        from streamkit.telemetry.otlp import consume

        await consume(self.traces, self.options.exporter)

    def close(self) -> None:
        self.traces.close()
        if self.options.exporter is not None:
            self.options.exporter.shutdown()

    # -- drain ---------------------------------------------------------------------------

    async def drain(self, sessions: Mapping[str, Session]) -> int:
        """Stop taking sessions and wait (up to the deadline) for the turns in flight now.
        Returns how many sessions did not settle in time. The caller then closes them."""
        self.draining = True
        deadline = self.clock.now() + round(self.options.drain_deadline_s * NS_PER_S)
        keepers = [self.keepers[sid] for sid in sessions if sid in self.keepers]
        self.drained_sessions = len(keepers)
        if not keepers:
            return 0
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(k.settle(deadline)) for k in keepers]
        return sum(1 for t in tasks if not t.result())
