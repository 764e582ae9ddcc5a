"""What a session is made of, as types: its pipeline's controls and factory, its codec.

Kept apart from :mod:`streamkit.transport.session` (which re-exports them) so pipelines and
codecs can name these without importing the session itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.transport.outbox import OutItem
from streamkit.transport.protocol import ProtocolError, SessionConfig

if TYPE_CHECKING:
    from streamkit.transport.session import Session

__all__ = ["Codec", "DeviceSourceFactory", "PipelineFactory", "SessionControls"]


class SessionControls(Protocol):
    """What a session may ask of its pipeline (methods may be sync or async).

    Optional, looked up by name: ``set_output_audio(on)``, ``set_turn_detection(policy)``,
    ``configure_turns(turns)``, ``add_text(text, role)``,
    ``respond(wait_for, instructions, max_tokens)``, ``clear_input(discard)`` and the
    ``answers`` / ``speaks`` properties.
    """

    def commit_input(self) -> Any: ...

    def cancel_response(self) -> Any: ...


PipelineFactory = Callable[[Stage, Stage, MetricsRegistry], tuple[Pipeline, SessionControls]]
"""``(source, sink, metrics) -> (pipeline, controls)``: builds one session's pipeline.

The source stage has output ports ``"audio"`` (and ``"video"`` if listed in its ``outputs``);
the sink has input port ``"in"`` taking ``Packet[Event]``. Models are loaded once by whoever
makes the factory and shared by every session.
"""

DeviceSourceFactory = Callable[[MetricsRegistry], Stage]
"""Opens the server's own capture devices as a source stage (``source: "devices"``)."""


class Codec(Protocol):
    """A protocol's side of a session (sans-I/O; :mod:`streamkit.transport.codecs`)."""

    start_at_connect: bool

    def configure(self, config: SessionConfig) -> SessionConfig: ...

    def started(self, session: Session) -> None: ...

    def created(
        self, session_id: str, now: int, config: SessionConfig, pipelines: list[str]
    ) -> list[OutItem]: ...

    def decode(self, message: str | bytes) -> list[Any]: ...

    def refuse(self, problem: ProtocolError) -> list[OutItem]: ...

    def result(self, command: Any, value: Any) -> list[OutItem]: ...

    def encode(self, event: msgspec.Struct, lineage: str | None = None) -> list[OutItem]: ...
