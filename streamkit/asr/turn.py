"""End-of-turn detection inside the ASR stage: the VAD's view → :class:`TurnCore` → effects.

:class:`AsrTurn` is the adapter between the ASR's pure core (which knows the open utterance
and its silence) and the pure turn policy (:mod:`streamkit.turn.core`). The ASR stage calls
:meth:`AsrTurn.step` after every piece of audio; it returns the :class:`TurnUpdate` events to
put out and whether to finalise the utterance now. :meth:`AsrTurn.run` is the one task that
runs the end-of-turn model (a :class:`~streamkit.turn.backend.TurnModel`) on its
:class:`~streamkit.core.compute.ModelSlot` — one question at a time, the newest wins — and hands
the answers back through the same ``apply`` callback, so the stage never waits for the model.

With a turn policy attached, the turn core decides every end of utterance (``vad``:
``hangover_ns`` of silence, today's rule; ``smart``: the model, or ``max_silence_ns``); the
ASR's own VAD hangover is only a backstop set past both (:func:`backstop_vad`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Literal

from streamkit.asr.core import AsrCore
from streamkit.asr.vad import VadConfig
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.compute import ComputeMode
from streamkit.core.events import TurnUpdate
from streamkit.core.media import ASR_SAMPLE_RATE
from streamkit.core.stage import StageContext
from streamkit.turn.backend import TurnModel, TurnUnavailable
from streamkit.turn.core import (
    EndTurn,
    Predict,
    Resume,
    Speculate,
    TurnAction,
    TurnConfig,
    TurnCore,
)
from streamkit.turn.tail import AudioTail

__all__ = [
    "FIXED_CHARGE_NS",
    "PAUSE_DECODE_NS",
    "AsrTurn",
    "Effects",
    "backstop_vad",
    "resolve_turn",
]

FIXED_CHARGE_NS: Nanos = 56 * NS_PER_MS
"""Virtual cost of one Smart Turn call unless the ASR charges measured CPU time
(``charge_cpu``): about its CPU time on this 2-core machine (bench/turns.py: p50 52-54 ms
since its BLAS runs on one thread; 81-93 ms before, spinning workers included). Replays
then take the same turn decisions every time."""

Effects = tuple[list[TurnUpdate], bool]
"""Events to put out (stream ``"turn"``) and whether to finalise the utterance now."""


def resolve_turn(config: TurnConfig, model: TurnModel | None) -> TurnConfig:
    """``auto`` → ``smart`` with a model, else ``vad``; ``smart`` without one raises."""
    if config.detection == "auto":
        return replace(config, detection="smart" if model is not None else "vad")
    if config.detection == "smart" and model is None:
        raise TurnUnavailable(
            "turn_detection=smart needs the Smart Turn model: run `make setup` or "
            "`python scripts/fetch_smart_turn.py` (or use turn_detection=vad)"
        )
    return config


PAUSE_DECODE_NS: Nanos = 96 * NS_PER_MS
"""The ASR's pause decode runs this early in a silence (or at the turn's pause, if shorter),
whatever the turn's own pause: the words are decoded while the turn is being decided."""


def backstop_vad(vad: VadConfig, turn: TurnConfig) -> VadConfig:
    """The ASR's VAD with its hangover past every turn policy's longest wait, and its pause
    (the pause decode) at ``PAUSE_DECODE_NS`` or the turn's pause, the shorter: the words up
    to the pause are decoded while the turn is being decided, so the final is ready when the
    turn ends (at 250 ms the pause decode started after a Smart Turn end, and the final
    waited for a decode of its own)."""
    longest = max(turn.hangover_ns, turn.max_silence_ns, turn.unfinished_silence_ns) / NS_PER_S
    pause = min(vad.pause_s, turn.pause_ns / NS_PER_S, PAUSE_DECODE_NS / NS_PER_S)
    return replace(vad, hangover_s=max(vad.hangover_s, longest + 0.25), pause_s=pause)


class AsrTurn:
    """Turn detection for one ASR stream (see the module docstring).

    Args:
        config: the policy (resolved: ``vad`` or ``smart``, see :func:`resolve_turn`).
        model: the end-of-turn model (needed for ``smart``).
        compute: ``thread`` live; ``virtual`` runs the model inline and charges its cost:
        charge: in virtual mode, ``"cpu"`` (its CPU time), a fixed cost in ns (bit-identical
            replays), or None (its wall time).
    """

    def __init__(
        self,
        config: TurnConfig,
        model: TurnModel | None,
        compute: ComputeMode = "thread",
        charge: Nanos | Literal["cpu"] | None = "cpu",
    ) -> None:
        self.model = model
        self.core = TurnCore(resolve_turn(config, model))
        self.compute: ComputeMode = compute
        self.charge = charge
        self.tail = AudioTail(model.max_audio_s + 0.6 if model is not None else 0.1)
        self._job: Predict | None = None
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def config(self) -> TurnConfig:
        return self.core.config

    def set_config(self, config: TurnConfig) -> None:
        """Switch policy/thresholds now (raises :class:`TurnUnavailable` for ``smart``
        without a model)."""
        self.core.set_config(resolve_turn(config, self.model))
        self._job = None

    def push(self, samples: object, pts: int) -> None:
        """Keep the audio the model may be asked about (16 kHz mono float32)."""
        if self.model is not None:
            self.tail.push(samples, pts)  # type: ignore[arg-type]

    def step(self, asr: AsrCore) -> Effects:
        """Feed the VAD's current view of ``asr`` to the turn core."""
        state = asr.speech_state()
        if state is None:
            return self._effects(self.core.update(asr.position, None, 0, None))
        uid, start, silence, at = state
        return self._effects(self.core.update(at, uid, start, silence))

    def heard(self, asr: AsrCore, uid: str, until: Nanos) -> Effects:
        """A pause decode of utterance ``uid`` covered the audio up to ``until``: what it heard
        counts in the decision (a question ends the turn sooner)."""
        state = asr.speech_state()
        now = state[3] if state is not None else asr.position
        return self._effects(self.core.heard(uid, asr.heard(uid), until, now))

    def close(self) -> None:
        """End of stream: :meth:`run` returns once its question (if any) is answered."""
        self._closed = True
        self._wake.set()

    def _effects(self, actions: list[TurnAction]) -> Effects:
        events: list[TurnUpdate] = []
        end = False
        for action in actions:
            match action:
                case Speculate(uid=uid, t=t):
                    events.append(TurnUpdate(uid, "pause", t))
                case Resume(uid=uid, at=at):
                    events.append(TurnUpdate(uid, "resume", at))
                case Predict():
                    self._job = action  # the newest question replaces an unasked one
                    self._wake.set()
                case EndTurn(uid=uid, t=t, reason=reason, probability=p):
                    events.append(TurnUpdate(uid, "end", t, reason, p))
                    end = True
        return events, end

    async def run(self, ctx: StageContext, apply: Callable[[Effects], Awaitable[None]]) -> None:
        """Answer the core's questions with the model until :meth:`close`."""
        if self.model is None:
            return
        model = self.model
        slot = model.slot(ctx.clock, self.compute, ctx.metrics)
        while True:
            job, self._job = self._job, None
            if job is None:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            audio = self.tail.read(job.start, job.end)
            if len(audio) < ASR_SAMPLE_RATE // 10:
                continue
            call = partial(model.predict, audio)
            probability = await slot.call(call, charge=self.charge)
            ctx.metrics.histogram("turn.probability_pct").observe(round(probability * 100))
            await apply(self._effects(self.core.result(job, probability)))
