"""The conversation a client saw, turn by turn: what was heard, the answer, the latencies.

:class:`TurnLog` is pure: feed it every server event with its local arrival time
(``observe(event, at)``, ns on the client's clock) and the clock offset measured at
``session.created``; it keeps one :class:`Turn` per utterance, in the order the utterances
started, and never forgets one (a session's turns are few). Every surface that shows a
conversation (the CLI client, its ``--json`` lines, tests) reads the same turns.

The headline latencies of a turn, both measured from the **end of speech** (the VAD's
``speech.stopped`` time, else the end of the last final), mapped to local time:

- ``eos_to_final_ns``: until the utterance's last ``transcript.final`` arrived;
- ``eos_to_first_token_ns``: until the first ``response.delta`` of its answer arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamkit.core.clock import NS_PER_S, Nanos
from streamkit.core.events import (
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
)
from streamkit.core.metrics import percentile

__all__ = ["Turn", "TurnLog", "summarize"]


@dataclass
class Turn:
    """One utterance and its answer; times are local-clock ns (``None``: not seen)."""

    utterance_id: str
    heard: str = ""
    partial: str = ""
    answer: str = ""
    started_at: Nanos | None = None
    eos: Nanos | None = None
    final_at: Nanos | None = None
    first_token_at: Nanos | None = None
    done_at: Nanos | None = None
    finalised: bool = False
    answered: bool = False
    cancelled: bool = False
    responding: bool = False

    @property
    def eos_to_final_ns(self) -> Nanos | None:
        if self.eos is None or self.final_at is None:
            return None
        return self.final_at - self.eos

    @property
    def eos_to_first_token_ns(self) -> Nanos | None:
        if self.eos is None or self.first_token_at is None:
            return None
        return self.first_token_at - self.eos

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (seconds, rounded to ms)."""

        def s(v: Nanos | None) -> float | None:
            return None if v is None else round(v / NS_PER_S, 3)

        return {
            "utterance_id": self.utterance_id,
            "heard": self.heard,
            "answer": self.answer,
            "cancelled": self.cancelled,
            "eos_to_final_s": s(self.eos_to_final_ns),
            "eos_to_first_token_s": s(self.eos_to_first_token_ns),
        }


@dataclass
class TurnLog:
    """Turns by utterance id, in order (see the module docstring)."""

    offset: Nanos = 0
    """Server clock − local clock (ns), from ``session.created``."""
    turns: dict[str, Turn] = field(default_factory=dict)

    def _turn(self, uid: str) -> Turn:
        turn = self.turns.get(uid)
        if turn is None:
            turn = self.turns[uid] = Turn(uid)
        return turn

    def observe(self, event: object, at: Nanos) -> Turn | None:
        """Apply one event; returns the turn it touched (None for other events)."""
        local = self.offset
        if isinstance(event, SpeechStarted):
            turn = self._turn(event.utterance_id)
            turn.started_at = event.t - local
        elif isinstance(event, SpeechStopped):
            turn = self._turn(event.utterance_id)
            turn.eos = event.t - local
        elif isinstance(event, TranscriptPartial):
            turn = self._turn(event.utterance_id)
            turn.partial = event.text
        elif isinstance(event, TranscriptFinal):
            turn = self._turn(event.utterance_id)
            if event.text.strip():
                turn.heard = f"{turn.heard} {event.text.strip()}".strip()
            turn.partial = ""
            if event.is_last:
                turn.finalised = True
                turn.final_at = at
                if turn.eos is None:
                    turn.eos = event.end - local
        elif isinstance(event, ResponseDelta):
            turn = self._turn(event.utterance_id)
            if turn.first_token_at is None:
                turn.first_token_at = at
            turn.responding = True
            turn.answer += event.text
        elif isinstance(event, ResponseDone):
            turn = self._turn(event.utterance_id)
            turn.answer = event.text
            turn.cancelled = event.cancelled
            turn.answered = True
            turn.responding = False
            turn.done_at = at
        else:
            return None
        return turn

    @property
    def ordered(self) -> list[Turn]:
        return list(self.turns.values())

    def settled(self, answers: bool) -> bool:
        """Nothing is pending: every utterance is final and (``answers``) every utterance
        with words has its ``response.done``, and no answer is still streaming."""
        for turn in self.turns.values():
            if turn.responding or not turn.finalised:
                return False
            if answers and turn.heard and not turn.answered:
                return False
        return True


def summarize(values: list[Nanos]) -> tuple[int, float | None, float | None]:
    """``(n, p50 s, p90 s)`` of latencies in ns (None when there are none)."""
    ordered = sorted(v / NS_PER_S for v in values)
    if not ordered:
        return 0, None, None
    return len(ordered), percentile(ordered, 50), percentile(ordered, 90)
