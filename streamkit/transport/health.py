"""Liveness and readiness as pure values, for load balancers and orchestrators.

``GET /healthz`` answers 200 while the process serves HTTP at all (liveness: restart me if
this fails). ``GET /readyz`` answers 200 only while a new session would be accepted —
models loaded, not draining, a session slot free — and 503 otherwise, so HAProxy
(``option httpchk GET /readyz``) or a Kubernetes readiness probe stops routing new sessions
here while the sessions already here carry on. Both bodies are the same JSON document
(:meth:`Readiness.body`), so an operator sees the reason and the capacity.

Nothing here reads a clock or does I/O: :func:`readiness` takes counts and returns a
frozen :class:`Readiness`; the server builds one per probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec

__all__ = ["HEALTH_PATH", "READY_PATH", "Readiness", "readiness"]

HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether this worker takes new sessions, and why not.

    Attributes:
        models_loaded: the pipelines' models are loaded and warmed up.
        draining: a drain (SIGTERM) has begun: no new sessions, in-flight turns finish.
        sessions: sessions open now.
        max_sessions: the most sessions this worker holds at once.
        store: where session state lives (``"memory"``: in this process only; ``"redis"``).
    """

    models_loaded: bool
    draining: bool
    sessions: int
    max_sessions: int
    store: str = "memory"

    @property
    def capacity_left(self) -> int:
        """Sessions this worker would still accept (0 when full or not ready)."""
        if not self.models_loaded or self.draining:
            return 0
        return max(0, self.max_sessions - self.sessions)

    @property
    def ready(self) -> bool:
        return self.capacity_left > 0

    @property
    def reason(self) -> str:
        """One word for the state: ``ready``, ``loading``, ``draining`` or ``full``."""
        if not self.models_loaded:
            return "loading"
        if self.draining:
            return "draining"
        if self.sessions >= self.max_sessions:
            return "full"
        return "ready"

    def body(self) -> bytes:
        """The JSON answer of ``/healthz`` and ``/readyz`` (one line, newline-terminated)."""
        return (
            msgspec.json.encode(
                {
                    "ready": self.ready,
                    "reason": self.reason,
                    "sessions": self.sessions,
                    "max_sessions": self.max_sessions,
                    "capacity_left": self.capacity_left,
                    "draining": self.draining,
                    "models_loaded": self.models_loaded,
                    "store": self.store,
                }
            )
            + b"\n"
        )

    def prometheus(self) -> str:
        """Gauges for a scrape: ``streamkit_ready``, ``_draining``, ``_capacity_left``,
        ``_max_sessions`` (``streamkit_sessions`` is written by the server)."""
        lines = []
        for name, value, text in (
            ("ready", int(self.ready), "1 when the server accepts sessions (models loaded)."),
            ("draining", int(self.draining), "1 while the server drains for a shutdown."),
            ("capacity_left", self.capacity_left, "Sessions the server can still accept."),
            ("max_sessions", self.max_sessions, "Most sessions the server accepts at once."),
        ):
            lines.append(
                f"# HELP streamkit_{name} {text}\n"
                f"# TYPE streamkit_{name} gauge\nstreamkit_{name} {value}\n"
            )
        return "".join(lines)


def readiness(
    *,
    models_loaded: bool,
    draining: bool,
    sessions: int,
    max_sessions: int,
    store: str = "memory",
) -> Readiness:
    """The readiness of a worker with these counts (pure)."""
    return Readiness(models_loaded, draining, sessions, max_sessions, store)
