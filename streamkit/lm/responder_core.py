"""Turn handling as a pure core: transcript events and ``now`` in, answer actions out.

:class:`ResponderCore` is the state of :class:`~streamkit.lm.responder.Responder` with no
task, no await and no clock: the utterances heard so far, the history, the recent
observations, the words carried over a barge-in, typed input and answer requests, the epoch,
and the one answer in progress. Every input is a method call that takes ``now`` (ns on the
shared clock) where time matters and returns a list of actions for the adapter to carry out:

- :class:`Prefill` — the prompt changed while no answer runs: evaluate
  :meth:`ResponderCore.prefill_request` when the model is free (coalesced by the adapter);
- :class:`Answer` — start generating ``state`` (a speculation when ``state.speculative``);
- :class:`Release` — the turn confirmed the held speculation ``response_id``: release it;
- :class:`Cancel` — stop the generation ``response_id`` now (barge-in, client, new words);
- :class:`Commit` — a finished answer entered the history (informational).

The adapter reports back with :meth:`ResponderCore.finish` when a generation ends. The core
never builds a task or reads a clock, so its tests are synchronous with explicit times
(``tests/lm/test_responder_core.py``), like :class:`~streamkit.align.core.AlignerCore`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from streamkit.core.clock import Nanos
from streamkit.core.events import (
    Observation,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
    TurnUpdate,
    Word,
)
from streamkit.lm.backend import LMRequest
from streamkit.lm.fusion import FusionBuilder, Turn
from streamkit.lm.responder_types import (
    Answer,
    AnswerState,
    Cancel,
    Commit,
    Finished,
    Prefill,
    Release,
    ResponderAction,
    ResponderConfig,
    TranscriptEvent,
    Utterance,
)

__all__ = ["ResponderCore"]


@dataclass
class _Request:
    """An answer asked for (:meth:`ResponderCore.respond`), waiting for the finals of ``wait``."""

    wait: set[str]
    instructions: str | None
    max_tokens: int | None


class ResponderCore:
    """The responder's decisions (see the module docstring).

    Args:
        config: options.
        count_tokens: the backend's tokenizer (the prompt budget).
    """

    def __init__(self, config: ResponderConfig, count_tokens: Callable[[str], int]) -> None:
        self.config = config
        self._count = count_tokens
        self.fusion = FusionBuilder(config.fusion, count_tokens)
        self._default_prompt = config.fusion.system_prompt
        self._default_max_tokens = config.max_tokens
        self.origin: Nanos = 0  # the pipeline's base time (prompt time marks)
        self.epoch = 0
        self.history: deque[Turn] = deque()  # bounded by _remember
        self.observations: deque[Observation] = deque(maxlen=config.observations_kept)
        self.active: AnswerState | None = None
        self.auto_answer = True
        self.speaking: Utterance | None = None
        self._utterances: dict[str, Utterance] = {}
        self._ids = itertools.count()
        self._texts = itertools.count()
        self._carry: list[Word] = []
        self._prefix_stale = False
        self._pending: list[Utterance] = []  # input not answered yet (auto_answer off, text)
        self._requested: _Request | None = None
        self._finished: deque[str] = deque(maxlen=64)
        self._discarded: deque[str] = deque(maxlen=64)
        self._paused: str | None = None  # utterance in a pause (TurnUpdate)
        self._respeculate_after: str | None = None  # response id whose end restarts one

    # -- state ----------------------------------------------------------------------------

    @property
    def answering(self) -> bool:
        """An answer the client sees is in progress (not a held speculation)."""
        return self.active is not None and not self.active.speculative

    def current(self, state: AnswerState) -> bool:
        """``state``'s deltas may still go out (its epoch is the current one)."""
        return state.epoch == self.epoch

    # -- control --------------------------------------------------------------------------

    def cancel(self, reason: str = "client") -> tuple[bool, list[ResponderAction]]:
        """Cancel the answer in progress; the flag says whether one the client sees ran."""
        self.epoch += 1
        if reason == "client":  # a barge-in does not drop an answer asked for (it may be
            self._requested = None  # the speech that request waits for, seen late)
        active = self.active
        if active is None or active.cancelled:
            return False, []
        active.cancelled = True
        active.reason = reason
        if active.speculative:
            active.reason = "speculation"
            return False, [Cancel(active.response_id, reason, True)]
        if reason != "client" and self.config.merge_interrupted:
            # the user spoke over the answer: their words so far join the next utterance
            self._carry = active.words[-self.config.carry_words :]
        return True, [Cancel(active.response_id, reason, False)]

    def set_instructions(
        self, text: str | None, max_tokens: int | None = None
    ) -> list[ResponderAction]:
        """The system prompt (None: the configured default) and the answer length cap."""
        fusion = replace(self.config.fusion, system_prompt=text or self._default_prompt)
        tokens = max_tokens or self._default_max_tokens
        if fusion == self.config.fusion and tokens == self.config.max_tokens:
            return []
        self.config = replace(self.config, fusion=fusion, max_tokens=tokens)
        self.fusion = FusionBuilder(fusion, self._count)
        self._prefix_stale = True
        return [Prefill()]

    def add_text(self, text: str, now: Nanos) -> None:
        """A typed user message at ``now``: joins the next answer's input (starts none)."""
        words = [Word(w, now, now, 1.0) for w in text.split()]
        if words:
            uid = f"text-{next(self._texts)}"
            self._pending.append(Utterance(uid, now, now, words, [], now, now))

    def respond(
        self,
        wait_for: tuple[str, ...] = (),
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """Answer the input not answered yet, once the finals of ``wait_for`` arrived
        (:meth:`start_requested` starts it)."""
        wait = {u for u in wait_for if u not in self._finished and u not in self._discarded}
        self._requested = _Request(wait, instructions, max_tokens)

    def discard(self, uids: tuple[str, ...]) -> None:
        """Leave these utterances out of every answer (the client cleared its input)."""
        self._discarded.extend(uids)
        self._pending = [u for u in self._pending if u.uid not in uids]
        if self._requested is not None:
            self._requested.wait -= set(uids)

    def start_requested(self, now: Nanos) -> list[ResponderAction]:
        """The answer asked for, if nothing it waits for is missing."""
        request = self._requested
        if request is None or request.wait:
            return []
        self._requested = None
        pending, self._pending = self._pending, []
        utt = Utterance(pending[-1].uid if pending else f"text-{next(self._texts)}")
        for part in pending:
            utt.words.extend(part.words)
            utt.started = part.started if utt.started is None else utt.started
            utt.stopped = part.stopped if utt.stopped is None else utt.stopped
            utt.start = part.start if utt.start is None else utt.start
            utt.end = part.end if part.end is not None else utt.end
        if utt.start is None:
            utt.started = utt.start = utt.end = now
        return self._answer(utt, now, request)

    # -- input ----------------------------------------------------------------------------

    def observe(self, observation: Observation) -> list[ResponderAction]:
        self.observations.append(observation)
        return [Prefill()] if self.speaking is not None else []

    def push(self, event: TranscriptEvent, now: Nanos) -> list[ResponderAction]:
        """One transcript event (in order), received at ``now``."""
        match event:
            case SpeechStarted():
                _, out = self.cancel("barge-in")
                utt = self._utterance(event.utterance_id)
                utt.started = event.t
                self.speaking = utt
                return out
            case SpeechStopped():
                self._utterance(event.utterance_id).stopped = event.t
                return []
            case TurnUpdate():
                return self._turn_update(event, now)
            case TranscriptPartial():
                utt = self._utterance(event.utterance_id)
                utt.tentative = list(event.words)
                self.speaking = utt
                out = self._respeculate(utt)
                return [*out, Prefill()] if self.config.prefill_partials else out
            case TranscriptFinal():
                return self._final(event, now)
        return []

    def _final(self, event: TranscriptFinal, now: Nanos) -> list[ResponderAction]:
        utt = self._utterance(event.utterance_id)
        utt.words.extend(event.words)
        # tentative words past these committed ones stay until the next partial replaces
        # them: a speculation on the same words then goes on (the ASR puts a final and then
        # a partial out per decode; between the two the words would look changed)
        utt.tentative = [w for w in utt.tentative if w.start + w.end > 2 * event.end]
        if event.is_last:
            utt.tentative = []
        utt.start = event.start if utt.start is None else min(utt.start, event.start)
        utt.end = event.end if utt.end is None else max(utt.end, event.end)
        if not event.is_last:
            self.speaking = utt
            return [*self._respeculate(utt), Prefill()]
        self.speaking = None
        self._finished.append(utt.uid)
        if utt.uid in self._discarded:
            return []
        if self._requested is not None:
            self._requested.wait.discard(utt.uid)
        if not self.auto_answer or self._requested is not None:
            self._pending.append(utt)
            return self.start_requested(now)
        return self._answer(utt, now, None)

    def _utterance(self, uid: str) -> Utterance:
        utt = self._utterances.get(uid)
        if utt is None:
            utt = self._utterances[uid] = Utterance(uid)
            while len(self._utterances) > 16:
                self._utterances.pop(next(iter(self._utterances)))
        return utt

    def _remember(self, turn: Turn) -> None:
        """Append ``turn`` to the history; past ``max_history`` turns the oldest half goes at
        once. The fusion builder keeps its history in blocks counted from the oldest turn
        (:func:`~streamkit.lm.fusion.history_start`), so a history that lost its oldest turn at
        every new one would move every block, and the cached prompt, at every turn."""
        self.history.append(turn)
        limit = max(1, self.config.max_history)
        if len(self.history) > limit:
            for _ in range(len(self.history) - limit // 2):
                self.history.popleft()

    # -- answers --------------------------------------------------------------------------

    def _answer(
        self, utt: Utterance, now: Nanos, request: _Request | None
    ) -> list[ResponderAction]:
        previous = self.active
        if previous is not None and request is None and self._confirm(previous, utt, now):
            return [Release(previous.response_id)]
        out: list[ResponderAction] = []
        if previous is not None:
            out += self.cancel("new utterance")[1]
        if self._pending:  # typed input waiting for this answer comes first
            pending, self._pending = self._pending, []
            utt.words[:0] = [w for part in pending for w in part.words]
        if request is None and not any(w.text.strip() for w in utt.words):
            return out
        state = AnswerState(f"resp-{next(self._ids)}", utt, self.epoch, received=now)
        state.words = [*self._carry, *utt.words]
        if request is not None:
            state.instructions, state.max_tokens = request.instructions, request.max_tokens
        self.active = state
        return [*out, Answer(state)]

    def request(self, state: AnswerState) -> LMRequest:
        """The request ``state`` generates from (a speculation's own, else built now)."""
        if state.request is None:
            state.request = self._build(state.utt, state.words, state)
        return state.request

    def finish(self, state: AnswerState, text: str) -> Finished:
        """The generation of ``state`` ended with ``text`` released to the client."""
        if self.active is state:
            self.active = None
        out: list[ResponderAction] = []
        if self._respeculate_after == state.response_id:
            self._respeculate_after = None
            if self._paused == state.utt.uid:
                out += self._speculate(state.utt, state.received)
        if state.reason == "speculation":  # dropped before release: the client saw nothing
            return Finished(True, True, out)
        cancelled = state.cancelled or state.epoch != self.epoch
        if cancelled and state.reason != "client" and self.config.merge_interrupted:
            return Finished(False, True, out)  # the words were carried (see cancel)
        self._carry = []  # the carried words were part of this request
        user_text = " ".join(w.text.strip() for w in state.words if w.text.strip())
        answer = text.strip()
        if answer and state.words:
            end = state.utt.end if state.utt.end is not None else state.words[-1].end
            turn = Turn(user_text, state.words[0].start, end, answer)
            self._remember(turn)
            self._prefix_stale = True
            out += [Commit(turn), Prefill()]
        return Finished(False, cancelled, out)

    # -- prompts --------------------------------------------------------------------------

    def _build(
        self, utt: Utterance, words: list[Word], state: AnswerState | None = None
    ) -> LMRequest:
        """The fused request for ``words`` (already including carried words); ``state``
        may override the instructions and the length of this one answer."""
        start = utt.start if utt.start is not None else utt.started
        if words and (start is None or words[0].start < start):
            start = words[0].start
        fusion = self.fusion
        if state is not None and state.instructions is not None:
            fusion = FusionBuilder(
                replace(self.config.fusion, system_prompt=state.instructions), self._count
            )
        fused = fusion.build(
            list(self.history),
            words,
            self.observations,
            origin=self.origin,
            start=start,
            end=utt.end,
        )
        return LMRequest(
            fused.messages,
            max_tokens=(state.max_tokens if state else None) or self.config.max_tokens,
            temperature=self.config.temperature,
            stop=self.config.stop,
        )

    def prefill_request(self, now: Nanos) -> LMRequest | None:
        """What to prefill now (None: nothing): the words heard so far while the user
        speaks, else the next turn's stable prefix after a turn ended or the prompt changed."""
        if self.active is not None:
            return None
        utt = self.speaking
        if utt is None:
            if not self._prefix_stale:
                return None
            self._prefix_stale = False  # system prompt + new history, cached now
            fused = self.fusion.build(list(self.history), [], (), start=now, end=now)
            return LMRequest(fused.messages[:-1], max_tokens=1)
        words = utt.words + utt.tentative
        if not words:
            return None
        return self._build(utt, self._carry + words)

    # -- speculation ----------------------------------------------------------------------

    def _turn_update(self, event: TurnUpdate, now: Nanos) -> list[ResponderAction]:
        """``pause``: speculate on the words so far; ``resume``: the user goes on."""
        utt = self._utterance(event.utterance_id)
        active = self.active
        if event.state == "pause":
            self._paused = utt.uid
            return self._speculate(utt, now)
        if event.state == "resume":
            self._paused = None
            if active is not None and active.speculative and active.utt is utt:
                return [*self.cancel("resume")[1], Prefill()]
        return []

    def _speculation(self, utt: Utterance) -> tuple[list[Word], LMRequest]:
        words = [*self._carry, *utt.words, *utt.tentative]
        return words, self._build(utt, words)

    def _speculate(self, utt: Utterance, now: Nanos) -> list[ResponderAction]:
        """Start a held answer on ``utt``'s words (when nothing else runs)."""
        if not self.config.speculate or self.active is not None:
            return []
        if not self.auto_answer or self._requested is not None:
            return []
        if utt.uid in self._discarded or self._pending:
            return []
        words, request = self._speculation(utt)
        if not any(w.text.strip() for w in words):
            return []
        state = AnswerState(f"resp-{next(self._ids)}", utt, self.epoch, words, request, True)
        state.received = now
        self.active = state
        return [Answer(state)]

    def _respeculate(self, utt: Utterance) -> list[ResponderAction]:
        """New words during a pause: a speculation on other words is replaced (when it has
        ended, see :meth:`finish`)."""
        active = self.active
        if active is None or not active.speculative or active.utt is not utt:
            return []
        if self._speculation(utt)[1] == active.request:
            return []
        out = self.cancel("words changed")[1]
        self._respeculate_after = active.response_id
        return out

    def _confirm(self, active: AnswerState, utt: Utterance, now: Nanos) -> bool:
        """The turn is over: the speculation answers exactly this request, release it."""
        if not active.speculative or active.utt is not utt or active.cancelled:
            return False
        words = [*self._carry, *utt.words]
        if self._build(utt, words) != active.request:
            return False
        active.words = words
        active.received = now
        active.speculative = False
        self._paused = None
        return True
