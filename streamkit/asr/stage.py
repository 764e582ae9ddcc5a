"""Streaming speech recognition stage: Silero VAD + faster-whisper + LocalAgreement.

Contract:

- input port ``"in"``: ``Packet[AudioChunk]`` (16 kHz mono float32, contiguous pts on the
  shared clock) and controls: :class:`Gap` (silence or utterance end), :class:`Flush`
  (forwarded), :class:`EndOfStream` (finalise, drain, return).
- output port ``"out"``: ``Packet`` of :class:`SpeechStarted`/:class:`SpeechStopped`
  (stream ``"speech"``) and :class:`TranscriptPartial`/:class:`TranscriptFinal` (stream
  ``"transcript"``), ``lineage`` = utterance id, ``pts`` = the event's time on the shared
  clock (word times are shared-clock ns: audio pts + offset in the window).
- metrics: gauge ``asr.lag_s`` (seconds of audio received but not yet decoded), counter
  ``asr.decodes.<kind>``, lineage marks ``asr.vad_start``/``asr.first_partial``/``asr.final``.

The policy lives in the pure :class:`~streamkit.asr.core.AsrCore`; this stage only
moves audio in, runs one decode at a time on the shared model's
:class:`~streamkit.core.compute.ModelSlot` (a thread live, inline + charged time in ``"virtual"``
mode) while it keeps reading audio, and puts events out. Audio is never dropped: while a
decode runs, audio accumulates and the next partial decode covers all of it.

:meth:`AsrStage.commit` force-finalises the current utterance (the server's
``input.commit``); call it from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from functools import partial
from typing import Any, Literal, TypeVar

from streamkit.asr.core import AsrConfig, AsrCore, AsrOutput
from streamkit.asr.turn import FIXED_CHARGE_NS, AsrTurn, Effects, backstop_vad, resolve_turn
from streamkit.asr.vad import SileroVad
from streamkit.asr.whisper import WhisperModelShared
from streamkit.core.clock import NS_PER_S
from streamkit.core.media import ASR_SAMPLE_RATE, AudioChunk
from streamkit.core.packet import EndOfStream, Flush, Gap, Packet
from streamkit.core.stage import OutPort, StageContext
from streamkit.turn.backend import TurnModel
from streamkit.turn.core import TurnConfig

__all__ = ["AsrConfig", "AsrStage"]

R = TypeVar("R")


def _identity(value: R) -> R:
    return value


class AsrStage:
    """Streaming ASR for one audio stream; the model may be shared by many stages.

    Args:
        model: the loaded, shared Whisper model.
        config: policy and decode settings.
        name: stage name (also the utterance id prefix).
    """

    inputs: tuple[str, ...] = ("in",)
    outputs: tuple[str, ...] = ("out",)

    def __init__(
        self,
        model: WhisperModelShared,
        config: AsrConfig | None = None,
        name: str = "asr",
        turn_model: TurnModel | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.config = config or AsrConfig()
        self.core: AsrCore | None = None
        self.turn_model = turn_model
        self.turn: AsrTurn | None = None
        self._wake = asyncio.Event()
        self._commit_requested = False
        self._backstop_due = False  # the turn waits changed: the segmenter needs a new backstop
        turn = self.config.turn  # the policy's own longest waits, before a client's VAD
        self._own_waits = None if turn is None else (turn.hangover_ns, turn.max_silence_ns)
        self._own_hangover_s = self.config.vad.hangover_s
        self._seq: dict[str, int] = {}
        self._since_commit: list[str] = []  # utterances started since the last commit
        self.samples_read = 0  # input samples taken, counted once their events are out

    async def setup(self, ctx: StageContext) -> None:
        vad = SileroVad()
        config = self.config
        if config.turn is not None:  # the turn policy ends utterances; the VAD is a backstop
            # measured CPU time only when asked (benchmarks); else a fixed cost, so replays
            # on a virtual clock take the same turn decisions every time
            charge: int | Literal["cpu"] = "cpu" if config.charge_cpu else FIXED_CHARGE_NS
            self.turn = AsrTurn(config.turn, self.turn_model, config.compute, charge)
            config = replace(config, vad=backstop_vad(config.vad, self.turn.config))
        self.core = AsrCore(config, vad.probs, prefix=self.name)

    def set_turn(self, config: TurnConfig) -> None:
        """Switch the end-of-turn policy or its thresholds now (from the loop's thread).
        Raises :class:`~streamkit.turn.backend.TurnUnavailable` for ``smart`` without the
        model, ValueError when this stage was built without turn detection."""
        if self.config.turn is None:
            raise ValueError(f"{self.name}: built without turn detection (AsrConfig.turn)")
        self._own_waits = (config.hangover_ns, config.max_silence_ns)
        if self.turn is None:  # not set up yet: setup builds the policy from the config
            self.config = replace(self.config, turn=resolve_turn(config, self.turn_model))
            return
        self.turn.set_config(config)
        self.config = replace(self.config, turn=self.turn.config)
        self._backstop_due = True
        self._refresh_backstop()

    def _refresh_backstop(self) -> None:
        """Give the running segmenter the turn policy's backstop after its waits changed
        (between utterances: while the user speaks, it is retried after every chunk)."""
        if self._backstop_due and self.turn is not None and self.core is not None:
            backstop = backstop_vad(self.config.vad, self.turn.config)
            self._backstop_due = not self.core.set_vad(backstop)

    def commit(self) -> tuple[str, ...]:
        """Force-finalise the current utterance (from the loop's thread); returns the ids of
        the utterances started since the previous commit (the input this commit closes,
        empty when no speech was heard), their events possibly still on their way.

        The commit takes effect once the audio already queued on the input is read: it
        closes what the client sent *before* it. (Applied at once, it finalised too early
        while the last words still waited on the edge; they then opened an utterance that
        no more audio would end — the client's last turn was never answered.)"""
        self._commit_requested = True
        self._wake.set()
        uids = list(self._since_commit)
        active = self.core.active_uid if self.core is not None else None
        if active is not None and active not in uids:
            uids.append(active)
        self._since_commit.clear()
        return tuple(uids)

    def configure_vad(self, threshold: float, hangover_s: float | None) -> bool:
        """New speech threshold and end-of-utterance silence (None: the turn policy's own,
        as the server or the session's ``turn`` set it); False if not applied (the user is
        speaking: call again later).

        With a turn policy the silence is the longest a turn waits (the ``vad`` policy's
        hangover, ``smart``'s maximum silence: a Realtime client's ``silence_duration_ms``;
        ``smart`` may end sooner on the model's word, and its unfinished-words hold may wait
        longer), and the segmenter stays the policy's
        backstop (:func:`~streamkit.asr.turn.backstop_vad`): the client's VAD in its place
        ended turns behind the policy's back and moved the pause decode from 96 ms to
        ``pause_s``."""
        vad = self.config.vad
        vad = replace(
            vad,
            threshold=threshold,
            neg_threshold=min(vad.neg_threshold, max(0.0, threshold - 0.15)),
            hangover_s=max(self._own_hangover_s if hangover_s is None else hangover_s, vad.pause_s),
        )
        turn = self.turn.config if self.turn is not None else self.config.turn
        segmenting = vad
        if turn is not None:
            if hangover_s is not None:
                silence = round(vad.hangover_s * NS_PER_S)
                turn = replace(turn, hangover_ns=silence, max_silence_ns=silence)
            elif self._own_waits is not None:
                hangover, longest = self._own_waits
                turn = replace(turn, hangover_ns=hangover, max_silence_ns=longest)
            segmenting = backstop_vad(vad, turn)
        if self.core is not None and not self.core.set_vad(segmenting):
            return False
        if self.turn is not None and turn is not None:
            self.turn.set_config(turn)
            turn = self.turn.config
        self.config = replace(self.config, vad=vad, turn=turn)
        return True

    async def run(self, ctx: StageContext) -> None:
        if self.core is None:
            await self.setup(ctx)
        assert self.core is not None
        out = ctx.output("out")
        state: dict[str, Any] = {"eos": False}
        async with asyncio.TaskGroup() as group:
            group.create_task(self._read(ctx, out, state), name=f"{self.name}:read")
            group.create_task(self._decode(ctx, out, state), name=f"{self.name}:decode")
            if self.turn is not None:
                apply = partial(self._apply_turn, ctx, out)
                group.create_task(self.turn.run(ctx, apply), name=f"{self.name}:turn")

    async def _apply_turn(self, ctx: StageContext, out: OutPort, effects: Effects) -> None:
        """Put the turn events out; at an end of turn finalise the utterance now."""
        assert self.core is not None
        events, end = effects
        for event in events:
            seq = self._seq.get("turn", 0)
            self._seq["turn"] = seq + 1
            packet = Packet("turn", seq, event.t, 0, event, lineage=event.utterance_id)
            await out.put(packet)
        state = self.core.speech_state()
        if end and state is not None and state[0] == events[-1].utterance_id:
            ctx.metrics.lineage.mark(state[0], "turn.end", ctx.clock.now())
            await self._emit(ctx, out, self.core.commit())
            self._wake.set()

    async def _emit(self, ctx: StageContext, out: OutPort, outputs: list[AsrOutput]) -> None:
        lineage = ctx.metrics.lineage
        for item in outputs:
            now = ctx.clock.now()
            kind = type(item.payload).__name__
            if kind == "SpeechStarted":
                lineage.mark(item.uid, "asr.vad_start", now)
                self._since_commit.append(item.uid)
                del self._since_commit[:-64]
            elif kind == "TranscriptPartial":
                lineage.mark(item.uid, "asr.first_partial", now)
            elif kind == "TranscriptFinal":
                lineage.mark(item.uid, "asr.final", now)
            seq = self._seq.get(item.stream, 0)
            self._seq[item.stream] = seq + 1
            await out.put(Packet(item.stream, seq, item.pts, 0, item.payload, lineage=item.uid))

    def _gauge(self, ctx: StageContext) -> None:
        assert self.core is not None
        ctx.metrics.gauge("asr.lag_s").set(self.core.lag_ns() / NS_PER_S)

    async def _read(self, ctx: StageContext, out: OutPort, state: dict[str, Any]) -> None:
        core = self.core
        assert core is not None
        inport = ctx.input("in")
        while True:
            item = await inport.get()
            if isinstance(item, EndOfStream):
                break
            if isinstance(item, Packet):
                chunk = item.payload
                if not isinstance(chunk, AudioChunk) or chunk.sample_rate != ASR_SAMPLE_RATE:
                    raise TypeError(
                        f"{self.name}: expected AudioChunk at {ASR_SAMPLE_RATE} Hz, got "
                        f"{type(chunk).__name__}"
                        + (f" at {chunk.sample_rate} Hz" if isinstance(chunk, AudioChunk) else "")
                    )
                await self._emit(ctx, out, core.push(chunk.samples, item.pts))
                self.samples_read += len(chunk.samples)  # after its events (see commit)
                if self.turn is not None:
                    self.turn.push(chunk.samples, item.pts)
                    await self._apply_turn(ctx, out, self.turn.step(core))
                    self._refresh_backstop()
            elif isinstance(item, Gap):
                await self._emit(ctx, out, core.gap(item.start, item.end))
            elif isinstance(item, Flush):
                await out.put(item)
            if self._commit_requested and not len(inport.edge):
                self._commit_requested = False
                await self._emit(ctx, out, core.commit())
            self._gauge(ctx)
            self._wake.set()
        await self._emit(ctx, out, core.finish())
        if self.turn is not None:
            self.turn.close()
        state["eos"] = True
        self._wake.set()

    async def _decode(self, ctx: StageContext, out: OutPort, state: dict[str, Any]) -> None:
        core = self.core
        assert core is not None
        slot = self.model.slot(ctx.clock, self.config.compute, ctx.metrics)
        queued = ctx.input("in").edge
        while True:
            self._wake.clear()
            if self._commit_requested and not len(queued):
                self._commit_requested = False
                await self._emit(ctx, out, core.commit())
            ready, job = core.poll(saturated=slot.running + slot.waiting >= slot.concurrency)
            await self._emit(ctx, out, ready)
            if job is not None:
                ctx.metrics.counter(f"asr.decodes.{job.kind}").inc()
                call = partial(self.model.decode_window, job.audio, job.prompt, job.options)
                # Pause and final decodes commit words a user waits for; partials are
                # speculative, so they queue behind them on a shared, busy model.
                priority = 1 if job.kind == "partial" else 0
                if self.config.compute == "virtual" and self.config.charge_cpu:
                    cpu_before = time.process_time_ns()
                    result = call()  # inline, as the virtual slot would; charge CPU time
                    cost = time.process_time_ns() - cpu_before
                    result = await slot.call(
                        partial(_identity, result), charge=cost, priority=priority
                    )
                else:
                    result = await slot.call(call, charge=self.config.charge_ns, priority=priority)
                await self._emit(ctx, out, core.complete(job, result))
                if job.kind == "pause" and self.turn is not None:  # the words count too
                    await self._apply_turn(ctx, out, self.turn.heard(core, job.uid, job.end))
                self._gauge(ctx)
                continue
            if state["eos"] and core.idle:
                return
            await self._wake.wait()
