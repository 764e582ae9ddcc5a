"""Turn handling: answer each finished utterance from the fused context, with barge-in.

:class:`Responder` is a stage with inputs

- ``"transcript"``: ``Packet`` of :class:`~streamkit.events.SpeechStarted` /
  :class:`~streamkit.events.SpeechStopped` / :class:`~streamkit.events.TranscriptPartial` /
  :class:`~streamkit.events.TranscriptFinal` (``lineage`` = utterance id), in order;
- ``"vision"`` (optional): ``Packet[Observation]``;

and output ``"out"``: ``Packet[ResponseDelta | ResponseDone]`` with ``lineage`` = utterance id,
``pts`` = the utterance's end of speech (so the port's end-to-end histogram reads end of
speech → output) and ``epoch`` = the responder's epoch.

Turns: a final with ``is_last=True`` starts an answer. While the user speaks, committed
finals, partials and observations are *prefilled* into the backend's prompt cache (coalesced,
only while no answer runs), so at the end of speech only a few tokens remain to evaluate; when
an answer ends, the next turn's stable prefix (system prompt + history) is prefilled at once.

Barge-in: ``SpeechStarted`` while answering (or :meth:`Responder.cancel`, or an in-band
``Flush``) bumps the epoch and cancels the generation at once (a cancel scope, no waiting for
the model); no delta of the old epoch is put after that, and ``ResponseDone(cancelled=True)``
follows with the text sent so far. When the user spoke over the answer, the interrupted
utterance's words are carried (with their times) into the next utterance's prompt rather than
entering the history with a truncated answer (``merge_interrupted``).

Metrics (in the pipeline's registry): lineage marks ``lm.first_token`` and ``lm.done`` per
utterance; histograms ``lm.<backend>.eos_to_first_token`` (end of speech → first token),
``lm.<backend>.final_to_first_token`` (final transcript received → first token),
``lm.<backend>.ttft`` (request → first token), ``lm.<backend>.token_interval``; gauge
``lm.<backend>.tokens_per_s``; counters ``lm.<backend>.cancelled`` and ``.prefills``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field, replace

from streamkit.clock import NS_PER_S, Nanos
from streamkit.events import (
    Observation,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
    Word,
)
from streamkit.lm.backend import LMBackend, LMRequest, Message
from streamkit.lm.fusion import FusionBuilder, FusionConfig, Turn
from streamkit.packet import EndOfStream, Flush, Packet
from streamkit.stage import InPort, OutPort, StageContext

__all__ = ["Responder", "ResponderConfig"]


@dataclass(frozen=True, slots=True)
class ResponderConfig:
    """Turn handling options.

    Attributes:
        name: stage name.
        fusion: prompt rendering and token budget.
        max_tokens / temperature: generation settings.
        max_history: finished turns kept for context (the budget may keep fewer).
        observations_kept: recent observations remembered for alignment.
        prefill: evaluate the prompt while the user speaks.
        prefill_partials: include tentative (partial) words in the prefill.
        merge_interrupted: when the user speaks over an answer (barge-in), the interrupted
            utterance's words are kept and prepended (with their times) to the next utterance,
            instead of entering the history with a truncated answer.
        carry_words: at most this many interrupted words are carried.
        stop: stop strings (small models go on to invent the user's next turn).
    """

    name: str = "responder"
    fusion: FusionConfig = field(default_factory=FusionConfig)
    max_tokens: int = 96
    temperature: float = 0.0
    max_history: int = 8
    observations_kept: int = 64
    prefill: bool = True
    prefill_partials: bool = True
    merge_interrupted: bool = True
    carry_words: int = 200
    stop: tuple[str, ...] = ("\nUser:", "\nuser:", "<|im_start|>")


@dataclass
class _Utterance:
    uid: str
    started: Nanos | None = None
    stopped: Nanos | None = None
    words: list[Word] = field(default_factory=list)
    tentative: list[Word] = field(default_factory=list)
    start: Nanos | None = None
    end: Nanos | None = None


@dataclass
class _Active:
    response_id: str
    utt: _Utterance
    epoch: int
    task: asyncio.Task[None] | None = None
    scope: asyncio.Timeout | None = None
    text: str = ""
    cancelled: bool = False
    reason: str = ""
    words: list[Word] = field(default_factory=list)
    instructions: str | None = None
    max_tokens: int | None = None


@dataclass
class _Request:
    """An answer asked for (:meth:`Responder.respond`), waiting for the finals of ``wait``."""

    wait: set[str]
    instructions: str | None
    max_tokens: int | None


class Responder:
    """The turn-handling stage (see the module docstring).

    Args:
        backend: the shared language model (loaded once per process).
        config: options; ``config.name`` is the stage name.
    """

    def __init__(self, backend: LMBackend, config: ResponderConfig | None = None) -> None:
        self.backend = backend
        self.config = config or ResponderConfig()
        self.name = self.config.name
        self.fusion = FusionBuilder(self.config.fusion, backend.count_tokens)
        self._default_prompt = self.config.fusion.system_prompt
        self._default_max_tokens = self.config.max_tokens
        self.epoch = 0
        self.history: deque[Turn] = deque(maxlen=self.config.max_history)
        self._observations: deque[Observation] = deque(maxlen=self.config.observations_kept)
        self._utterances: dict[str, _Utterance] = {}
        self._active: _Active | None = None
        self._ids = itertools.count()
        self._seq = itertools.count()
        self._prefill_wanted = asyncio.Event()
        self._speaking: _Utterance | None = None
        self._carry: list[Word] = []
        self._prefix_stale = False
        self.auto_answer = True
        self._pending: list[_Utterance] = []  # input not answered yet (auto_answer False, text)
        self._requested: _Request | None = None
        self._finished: deque[str] = deque(maxlen=64)
        self._discarded: deque[str] = deque(maxlen=64)
        self._texts = itertools.count()
        self._ctx: StageContext | None = None
        self._out: OutPort | None = None
        self._group: asyncio.TaskGroup | None = None

    # -- public control -------------------------------------------------------------------

    def cancel(self, reason: str = "client") -> bool:
        """Cancel the answer in progress now (client ``response.cancel``). Returns whether one
        was running. Safe to call from any task of the loop; never blocks."""
        self.epoch += 1
        self._requested = None
        active = self._active
        if active is None or active.cancelled:
            return False
        active.cancelled = True
        active.reason = reason
        if reason != "client" and self.config.merge_interrupted:
            # the user spoke over the answer: their words so far join the next utterance
            self._carry = active.words[-self.config.carry_words :]
        if active.scope is not None:
            active.scope.reschedule(asyncio.get_running_loop().time())
        if self._ctx is not None:
            self._ctx.metrics.counter(f"lm.{self.backend.name}.cancelled").inc()
        return True

    @property
    def answering(self) -> bool:
        return self._active is not None

    # -- conversation control (typed turns, answers on request: a Realtime client) --------

    def set_instructions(self, text: str | None, max_tokens: int | None = None) -> None:
        """The system prompt (None: the configured default) and the answer length cap."""
        fusion = replace(self.config.fusion, system_prompt=text or self._default_prompt)
        tokens = max_tokens or self._default_max_tokens
        if fusion != self.config.fusion or tokens != self.config.max_tokens:
            self.config = replace(self.config, fusion=fusion, max_tokens=tokens)
            self.fusion = FusionBuilder(fusion, self.backend.count_tokens)
            self._prefix_stale = True
            self._prefill_wanted.set()

    def add_text(self, text: str, now: Nanos) -> None:
        """A typed user message at ``now``: joins the next answer's input (starts none)."""
        words = [Word(w, now, now, 1.0) for w in text.split()]
        if words:
            uid = f"text-{next(self._texts)}"
            self._pending.append(_Utterance(uid, now, now, words, [], now, now))

    def respond(
        self,
        wait_for: tuple[str, ...] = (),
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """Answer the input not answered yet, once the finals of ``wait_for`` arrived."""
        wait = {u for u in wait_for if u not in self._finished and u not in self._discarded}
        self._requested = _Request(wait, instructions, max_tokens)
        self._start_requested()

    def discard(self, uids: tuple[str, ...]) -> None:
        """Leave these utterances out of every answer (the client cleared its input)."""
        self._discarded.extend(uids)
        self._pending = [u for u in self._pending if u.uid not in uids]
        if self._requested is not None:
            self._requested.wait -= set(uids)
            self._start_requested()

    def _start_requested(self) -> None:
        request = self._requested
        if request is None or request.wait or self._group is None or self._ctx is None:
            return
        self._requested = None
        now = self._ctx.clock.now()
        pending, self._pending = self._pending, []
        utt = _Utterance(pending[-1].uid if pending else f"text-{next(self._texts)}")
        for part in pending:
            utt.words.extend(part.words)
            for name in ("started", "stopped", "start"):
                if getattr(utt, name) is None:
                    setattr(utt, name, getattr(part, name))
            utt.end = part.end if part.end is not None else utt.end
        if utt.start is None:
            utt.started = utt.start = utt.end = now
        self._group.create_task(self._answer(utt, None, request))

    # -- stage ---------------------------------------------------------------------------

    async def setup(self, ctx: StageContext) -> None:
        """Warm the backend (once per process) and prefill the stable prefix (system
        prompt), so the first utterance only pays for its own tokens."""
        await self.backend.warmup()
        if self.config.prefill:
            system = Message("system", self.config.fusion.system_prompt)
            await self.backend.prefill(LMRequest((system,), max_tokens=1))

    async def run(self, ctx: StageContext) -> None:
        self._ctx = ctx
        self._out = ctx.output("out")
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._start_requested()
            helpers = []
            if "vision" in ctx.inputs:
                helpers.append(group.create_task(self._read_vision(ctx.input("vision"))))
            if self.config.prefill:
                helpers.append(group.create_task(self._prefill_loop()))
            await self._read_transcript(ctx.input("transcript"))
            if self._active is not None and self._active.task is not None:
                await asyncio.wait([self._active.task])
            for task in helpers:
                task.cancel()

    # -- inputs --------------------------------------------------------------------------

    async def _read_vision(self, port: InPort) -> None:
        async for item in port:
            if isinstance(item, Packet) and isinstance(item.payload, Observation):
                self._observations.append(item.payload)
                if self._speaking is not None:
                    self._prefill_wanted.set()

    def _utterance(self, uid: str) -> _Utterance:
        utt = self._utterances.get(uid)
        if utt is None:
            utt = self._utterances[uid] = _Utterance(uid)
            while len(self._utterances) > 16:
                self._utterances.pop(next(iter(self._utterances)))
        return utt

    async def _read_transcript(self, port: InPort) -> None:
        while True:
            item = await port.get()
            if isinstance(item, EndOfStream):
                return
            if isinstance(item, Flush):
                self.cancel("flush")
                continue
            if not isinstance(item, Packet):
                continue
            event = item.payload
            if isinstance(event, SpeechStarted):
                self.cancel("barge-in")
                utt = self._utterance(event.utterance_id)
                utt.started = event.t
                self._speaking = utt
            elif isinstance(event, SpeechStopped):
                self._utterance(event.utterance_id).stopped = event.t
            elif isinstance(event, TranscriptPartial):
                utt = self._utterance(event.utterance_id)
                utt.tentative = list(event.words)
                self._speaking = utt
                if self.config.prefill_partials:
                    self._prefill_wanted.set()
            elif isinstance(event, TranscriptFinal):
                utt = self._utterance(event.utterance_id)
                utt.words.extend(event.words)
                utt.tentative = []
                utt.start = event.start if utt.start is None else min(utt.start, event.start)
                utt.end = event.end if utt.end is None else max(utt.end, event.end)
                if not event.is_last:
                    self._speaking = utt
                    self._prefill_wanted.set()
                    continue
                self._speaking = None
                self._finished.append(utt.uid)
                if utt.uid in self._discarded:
                    continue
                if self._requested is not None:
                    self._requested.wait.discard(utt.uid)
                if not self.auto_answer or self._requested is not None:
                    self._pending.append(utt)
                    self._start_requested()
                    continue
                await self._answer(utt, item)

    # -- prefill -------------------------------------------------------------------------

    def _request(
        self, utt: _Utterance, words: list[Word], active: _Active | None = None
    ) -> LMRequest:
        """The fused request for ``words`` (already including carried words); ``active``
        may override the instructions and the length of this one answer."""
        assert self._ctx is not None
        start = utt.start if utt.start is not None else utt.started
        if words and (start is None or words[0].start < start):
            start = words[0].start
        fusion = self.fusion
        if active is not None and active.instructions is not None:
            fusion = FusionBuilder(
                replace(self.config.fusion, system_prompt=active.instructions),
                self.backend.count_tokens,
            )
        fused = fusion.build(
            list(self.history),
            words,
            self._observations,
            origin=self._ctx.base_time,
            start=start,
            end=utt.end,
        )
        return LMRequest(
            fused.messages,
            max_tokens=(active.max_tokens if active else None) or self.config.max_tokens,
            temperature=self.config.temperature,
            stop=self.config.stop,
        )

    async def _prefill_loop(self) -> None:
        assert self._ctx is not None
        counter = self._ctx.metrics.counter(f"lm.{self.backend.name}.prefills")
        while True:
            await self._prefill_wanted.wait()
            self._prefill_wanted.clear()
            utt = self._speaking
            if self._active is not None:
                continue
            if utt is None:
                if self._prefix_stale:  # a turn ended: cache system prompt + new history now
                    self._prefix_stale = False
                    await self.backend.prefill(self._prefix_request())
                    counter.inc()
                continue
            words = utt.words + utt.tentative
            if not words:
                continue
            words = self._carry + words
            await self.backend.prefill(self._request(utt, words))
            counter.inc()

    def _prefix_request(self) -> LMRequest:
        """System prompt + history only: the stable prefix of the next turn's prompt."""
        assert self._ctx is not None
        now = self._ctx.clock.now()
        fused = self.fusion.build(list(self.history), [], (), start=now, end=now)
        return LMRequest(fused.messages[:-1], max_tokens=1)

    # -- answering -----------------------------------------------------------------------

    async def _answer(
        self,
        utt: _Utterance,
        final: Packet[TranscriptFinal] | None,
        request: _Request | None = None,
    ) -> None:
        previous = self._active
        if previous is not None:
            self.cancel("new utterance")
            if previous.task is not None:
                await asyncio.wait([previous.task])
        if self._pending:  # typed input waiting for this answer comes first
            pending, self._pending = self._pending, []
            utt.words[:0] = [w for part in pending for w in part.words]
        if request is None and not any(w.text.strip() for w in utt.words):
            return
        assert self._group is not None
        assert self._ctx is not None
        active = _Active(f"resp-{next(self._ids)}", utt, self.epoch)
        if request is not None:
            active.instructions, active.max_tokens = request.instructions, request.max_tokens
        self._active = active
        received = self._ctx.clock.now()
        active.task = self._group.create_task(self._generate(active, received))

    async def _emit(self, active: _Active, payload: ResponseDelta | ResponseDone) -> None:
        assert self._out is not None
        utt = active.utt
        pts = utt.stopped or utt.end or utt.started or 0
        packet = Packet("response", next(self._seq), pts, 0, payload, self.epoch, utt.uid)
        await self._out.put(packet)

    async def _generate(self, active: _Active, received: Nanos) -> None:
        assert self._ctx is not None
        ctx, utt, backend = self._ctx, active.utt, self.backend
        metrics, name = ctx.metrics, backend.name
        eos = utt.stopped if utt.stopped is not None else utt.end
        requested = ctx.clock.now()
        first_at: Nanos | None = None
        last_at = requested
        index = 0
        active.words = [*self._carry, *utt.words]
        completion = backend.complete(self._request(utt, active.words, active))
        try:
            async with asyncio.timeout(None) as scope:
                active.scope = scope
                if active.cancelled:  # cancelled before the task started
                    scope.reschedule(asyncio.get_running_loop().time())
                async for delta in completion:
                    now = ctx.clock.now()
                    if active.epoch != self.epoch:
                        break
                    if first_at is None:
                        first_at = now
                        metrics.lineage.mark(utt.uid, "lm.first_token", now)
                        metrics.histogram(f"lm.{name}.ttft").observe(now - requested)
                        metrics.histogram(f"lm.{name}.final_to_first_token").observe(now - received)
                        if eos is not None:
                            metrics.histogram(f"lm.{name}.eos_to_first_token").observe(now - eos)
                    else:
                        metrics.histogram(f"lm.{name}.token_interval").observe(now - last_at)
                    last_at = now
                    active.text += delta
                    await self._emit(
                        active, ResponseDelta(active.response_id, utt.uid, delta, index)
                    )
                    index += 1
        except TimeoutError:
            pass  # our cancel scope fired: barge-in / cancel()
        finally:
            await completion.aclose()
            if self._active is active:
                self._active = None
        done_at = ctx.clock.now()
        usage = completion.usage
        cancelled = active.cancelled or active.epoch != self.epoch
        if first_at is not None and done_at > first_at and usage.completion_tokens > 1:
            rate = (usage.completion_tokens - 1) * NS_PER_S / (done_at - first_at)
            metrics.gauge(f"lm.{name}.tokens_per_s").set(rate)
        metrics.lineage.mark(utt.uid, "lm.done", done_at)
        await self._emit(
            active,
            ResponseDone(
                active.response_id,
                utt.uid,
                active.text,
                cancelled=cancelled,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            ),
        )
        if cancelled and active.reason != "client" and self.config.merge_interrupted:
            return  # the words were carried into the next utterance (see cancel)
        self._carry = []  # the carried words were part of this request
        user_text = " ".join(w.text.strip() for w in active.words if w.text.strip())
        answer = active.text.strip()
        if answer and active.words:
            end = utt.end if utt.end is not None else active.words[-1].end
            self.history.append(Turn(user_text, active.words[0].start, end, answer))
            self._prefix_stale = True
            self._prefill_wanted.set()
