"""What a session asks of its pipeline's controls, looked up by name (no state, no I/O).

A pipeline's :class:`~streamkit.transport.session_types.SessionControls` has two required
methods; everything else is optional and found with ``getattr``, so a pipeline without an LM,
a voice or turn-taking simply lacks the method and the setting is ignored:

- :func:`apply_settings`: the session settings a pipeline takes while it runs
  (:data:`SETTERS`: ``output_audio``, ``instructions``, ``grounding``); a new setting is one
  line there;
- :func:`set_turn_detection`: ``turn_detection``, which may be refused (no model), and
  :func:`set_turn_settings`: ``turn``, its thresholds;
- :func:`conversation`: the conversation commands (typed text, "answer now", clear input);
- :func:`call`: a control method may be sync or async.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any, Final

from streamkit.transport.commands import AddText, ClearInput, Respond
from streamkit.transport.protocol import ProtocolError, SessionConfig, TurnSettings

__all__ = [
    "SETTERS",
    "apply_settings",
    "call",
    "conversation",
    "initial_settings",
    "set_turn_detection",
    "set_turn_settings",
]

SETTERS: Final[dict[str, tuple[str, Callable[[SessionConfig], Any]]]] = {
    "output_audio": ("set_output_audio", lambda c: c.output_audio),
    "instructions": ("set_instructions", lambda c: c.instructions or None),
    "grounding": ("set_grounding", lambda c: c.grounding),
}
"""Session setting → (the controls' setter, the value it is given), in the order applied."""

_CONVERSATION: Final = {AddText: "add_text", Respond: "respond", ClearInput: "clear_input"}


async def call(result: Any) -> Any:
    """The value of a control method's result, awaited if it is awaitable."""
    return await result if inspect.isawaitable(result) else result


def apply_settings(controls: object, config: SessionConfig, names: Collection[str]) -> None:
    """Hand the settings ``names`` of ``config`` to ``controls`` (those it has setters for)."""
    for name, (setter_name, value) in SETTERS.items():
        setter = getattr(controls, setter_name, None) if name in names else None
        if setter is not None:
            setter(value(config))


def initial_settings(config: SessionConfig) -> list[str]:
    """The settings a new pipeline is given: ``output_audio``, and the others when set."""
    return [n for n in SETTERS if n == "output_audio" or getattr(config, n)]


def set_turn_detection(controls: object, detection: str) -> ProtocolError | None:
    """Apply ``session.update`` ``turn_detection`` to a pipeline that has turn-taking (others
    ignore it); a policy the server cannot run (no model) is an ``invalid_message`` error."""
    return _turn_setter(controls, "set_turn_detection", detection)


def set_turn_settings(controls: object, settings: TurnSettings) -> ProtocolError | None:
    """Apply ``session.update`` ``turn`` (the end-of-turn thresholds) to a pipeline that has
    turn-taking (others ignore it)."""
    return _turn_setter(controls, "set_turn_settings", settings)


def _turn_setter(controls: object, name: str, value: object) -> ProtocolError | None:
    setter = getattr(controls, name, None)
    if setter is None:
        return None
    try:
        setter(value)
    except (RuntimeError, ValueError) as error:
        return ProtocolError("invalid_message", str(error)[:300])
    return None


async def conversation(controls: object, command: Any) -> Any:
    """Carry out ``AddText`` / ``Respond`` / ``ClearInput`` on ``controls``; its value, or the
    ``unsupported_event`` error of a pipeline without that control."""
    if isinstance(command, Respond) and not getattr(controls, "answers", True):
        return ProtocolError("unsupported_event", "this pipeline does not answer (no LM)")
    name = _CONVERSATION.get(type(command))
    method = getattr(controls, name, None) if name else None
    if method is None:
        what = type(command).__name__
        return ProtocolError("unsupported_event", f"this pipeline has no {what}")
    if isinstance(command, AddText):
        return await call(method(command.text, command.role))
    if isinstance(command, Respond):
        return await call(method(command.wait_for, command.instructions, command.max_tokens))
    assert isinstance(command, ClearInput)
    return await call(method(command.discard))
