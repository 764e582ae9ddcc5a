"""The responder's values: its options, what it heard, its answers and its actions.

Shared by the pure :class:`~streamkit.lm.responder_core.ResponderCore` and its thin async
adapter :class:`~streamkit.lm.responder.Responder` (times in ns on the shared clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamkit.core.clock import Nanos
from streamkit.core.events import (
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
    TurnUpdate,
    Word,
)
from streamkit.lm.backend import LMRequest
from streamkit.lm.fusion import FusionConfig, Turn

__all__ = [
    "Answer",
    "AnswerState",
    "Cancel",
    "Commit",
    "Finished",
    "Prefill",
    "Release",
    "ResponderAction",
    "ResponderConfig",
    "TranscriptEvent",
    "Utterance",
]

TranscriptEvent = SpeechStarted | SpeechStopped | TurnUpdate | TranscriptPartial | TranscriptFinal


@dataclass(frozen=True, slots=True)
class ResponderConfig:
    """Turn handling options.

    Attributes:
        name: stage name.
        fusion: prompt rendering and token budget.
        max_tokens / temperature: generation settings.
        max_history: finished turns kept for context (the budget may keep fewer); past it
            the oldest half is dropped at once.
        observations_kept: recent observations remembered for alignment.
        prefill: evaluate the prompt while the user speaks.
        prefill_partials: include tentative (partial) words in the prefill.
        merge_interrupted: when the user speaks over an answer (barge-in), the interrupted
            utterance's words are kept and prepended (with their times) to the next utterance,
            instead of entering the history with a truncated answer.
        carry_words: at most this many interrupted words are carried.
        stop: stop strings (the backend stops generating there).
        single_line: an answer ends at its first line break after some text (small models
            go on with a second part or the user's next turn). Every answer passes the
            markup guard (:mod:`streamkit.lm.guard`, counter ``lm.<backend>.markup_stripped``).
        speculate: start the answer at a pause (``TurnUpdate`` ``pause``), release it only
            when the turn is confirmed (see :mod:`streamkit.lm.responder`).
        speculate_tokens: a speculation generates at most this many tokens before it waits.
        announce_held: put a speculation's held text out after every token as a
            :class:`~streamkit.core.events.ResponseHeld` (for a voice downstream that
            consumes it; a pipeline without one must leave this off).
    """

    name: str = "responder"
    fusion: FusionConfig = field(default_factory=FusionConfig)
    max_tokens: int = 48
    temperature: float = 0.0
    max_history: int = 16
    observations_kept: int = 64
    prefill: bool = True
    prefill_partials: bool = True
    merge_interrupted: bool = True
    carry_words: int = 200
    stop: tuple[str, ...] = ("<|im_start|>",)
    single_line: bool = True
    speculate: bool = True
    speculate_tokens: int = 8
    announce_held: bool = False


@dataclass
class Utterance:
    """What was heard of one utterance (times in ns on the shared clock)."""

    uid: str
    started: Nanos | None = None
    stopped: Nanos | None = None
    words: list[Word] = field(default_factory=list)
    tentative: list[Word] = field(default_factory=list)
    start: Nanos | None = None
    end: Nanos | None = None

    @property
    def eos(self) -> Nanos | None:
        """End of speech: the VAD's stop, else the last word's end."""
        return self.stopped if self.stopped is not None else self.end


@dataclass
class AnswerState:
    """One answer (or speculation), owned by the core; the adapter only reads it.

    ``words``: the user's words it answers (carried words first); ``request``: set for a
    speculation (the request it started with), else built by :meth:`ResponderCore.request`
    when the generation starts; ``received``: when its input was complete (ns)."""

    response_id: str
    utt: Utterance
    epoch: int
    words: list[Word] = field(default_factory=list)
    request: LMRequest | None = None
    speculative: bool = False
    cancelled: bool = False
    reason: str = ""
    instructions: str | None = None
    max_tokens: int | None = None
    received: Nanos = 0


@dataclass(frozen=True, slots=True)
class Prefill:
    """The prompt changed: prefill :meth:`ResponderCore.prefill_request` when free."""


@dataclass(frozen=True, slots=True)
class Answer:
    """Generate ``state`` (after the previous generation has ended)."""

    state: AnswerState


@dataclass(frozen=True, slots=True)
class Release:
    """Release the held speculation ``response_id``: the turn is confirmed."""

    response_id: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop generating ``response_id`` now; ``speculative``: silently (never released)."""

    response_id: str
    reason: str
    speculative: bool


@dataclass(frozen=True, slots=True)
class Commit:
    """``turn`` entered the history."""

    turn: Turn


ResponderAction = Prefill | Answer | Release | Cancel | Commit


@dataclass(frozen=True, slots=True)
class Finished:
    """How a generation ended (:meth:`ResponderCore.finish`).

    ``dropped``: a speculation never released (the client saw nothing: no ``ResponseDone``);
    ``cancelled``: stopped before its end."""

    dropped: bool
    cancelled: bool
    actions: list[ResponderAction]
