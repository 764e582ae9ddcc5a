"""Barge-in on the user's voice, not on the echo of our own: a reference-energy echo gate.

With speakers, the microphone hears the answer being spoken; the VAD then "hears speech" and
the assistant would interrupt itself. The server knows exactly what it is playing (the TTS
frames on the shared clock), so :class:`EchoGateCore` compares, per 20 ms frame, the
microphone's energy with the energy of the reference it played around that time (a window
``-max_delay_ms .. +lead_ms``: the acoustic/device delay is unknown and clients play up to the
lead early) scaled by the **echo gain** it learns (the 90th percentile of mic/reference while
the voice plays and no utterance is being decided or judged the user's until it :meth:`ended`
— so the user's own voice does not teach it; a mic frame is learned only ``learn_delay_ms``
later, unless an utterance started since: the VAD reports the user's onset late, and those
frames once taught it the user's voice, and the next barge-in was called echo:
~0 behind the browser's echo cancellation, ~0.3 for a speaker in a room). A frame
*is the user* when its energy is ``ratio`` × above what the echo explains, and above a floor.

An utterance that begins while the voice plays is held until decided:

- ``min_frames`` user frames from ``lookback_ms`` before its start to ``decide_ms`` after →
  the user (barge-in). The look-back counts the voice's onset, which the VAD reports 1–3
  windows late (it crosses its threshold after the energy rose), so a clear barge-in is
  decided the moment the VAD reports it instead of ~``min_frames`` × 20 ms later;
- otherwise → echo: its events are dropped (it never reaches the responder or the voice) — but
  it stays watched, and ``min_frames`` user frames later in it promote it to the user (someone
  who starts talking while the echo already holds the VAD open).

An utterance that begins while nothing plays passes at once. Pure: every call takes the
times; nothing reads a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_MS, Nanos

__all__ = ["EchoGateConfig", "EchoGateCore", "Verdict", "frame_rms"]

Verdict = Literal["user", "echo"]
_FRAME_NS = 20 * NS_PER_MS


@dataclass(frozen=True, slots=True)
class EchoGateConfig:
    """Gate settings (energies are RMS of float samples in [-1, 1])."""

    ratio: float = 2.0
    floor: float = 0.01
    min_frames: int = 4
    decide_ms: int = 400
    lookback_ms: int = 80
    learn_delay_ms: int = 400
    max_delay_ms: int = 400
    lead_ms: int = 250
    initial_gain: float = 1.0
    gain_percentile: float = 90.0
    keep_s: float = 10.0


def frame_rms(samples: npt.NDArray[np.float32], rate: int) -> list[float]:
    """RMS of each 20 ms frame of ``samples`` (a last partial frame counts)."""
    step = max(1, rate // 50)
    return [float(np.sqrt(np.mean(np.square(samples[i : i + step], dtype=np.float64))))
            for i in range(0, len(samples), step) if len(samples[i : i + step])]


@dataclass
class _Held:
    start: Nanos
    verdict: Verdict | None = None


@dataclass
class EchoGateCore:
    """The echo gate (see the module docstring)."""

    config: EchoGateConfig = field(default_factory=EchoGateConfig)
    _ref: dict[int, float] = field(default_factory=dict)  # 20 ms slot → reference RMS
    _mic: deque[tuple[Nanos, float]] = field(default_factory=deque)
    _ratios: deque[float] = field(default_factory=lambda: deque(maxlen=500))
    _held: dict[str, _Held] = field(default_factory=dict)
    _user: dict[str, Nanos] = field(default_factory=dict)  # judged the user's: start
    _learning: deque[tuple[Nanos, float]] = field(default_factory=deque)  # not yet settled
    gain: float = -1.0

    # -- inputs ----------------------------------------------------------------------------

    def reference(self, pts: Nanos, samples: npt.NDArray[np.float32], rate: int) -> None:
        """Audio the voice plays from ``pts`` (shared clock, ns)."""
        for i, rms in enumerate(frame_rms(samples, rate)):
            slot = (pts + i * _FRAME_NS) // _FRAME_NS
            self._ref[slot] = max(self._ref.get(slot, 0.0), rms)
        horizon = (pts - round(self.config.keep_s * 1e9)) // _FRAME_NS
        for slot in [s for s in self._ref if s < horizon]:
            del self._ref[slot]

    def mic(self, pts: Nanos, samples: npt.NDArray[np.float32], rate: int) -> None:
        """Microphone audio captured from ``pts``; learns the echo gain while the voice plays
        (not while an utterance that may be the user's is being decided)."""
        stale = pts - round(3 * self.config.keep_s * 1e9)  # an end that never came
        for uid in [u for u, start in self._user.items() if start < stale]:
            del self._user[uid]
        learn = not self._user and all(h.verdict == "echo" for h in self._held.values())
        for i, rms in enumerate(frame_rms(samples, rate)):
            t = pts + i * _FRAME_NS
            self._mic.append((t, rms))
            echo = self._echo(t)
            if learn and echo > self.config.floor:
                self._learning.append((t, rms / echo))
        settled = pts - self.config.learn_delay_ms * NS_PER_MS
        while self._learning and self._learning[0][0] < settled:
            self._ratios.append(self._learning.popleft()[1])
        while self._mic and self._mic[0][0] < pts - round(self.config.keep_s * 1e9):
            self._mic.popleft()
        if len(self._ratios) >= 25:
            self.gain = float(np.percentile(self._ratios, self.config.gain_percentile))

    def _echo(self, t: Nanos) -> float:
        """The loudest reference that may sound in the mic at ``t``."""
        cfg = self.config
        lo = (t - cfg.max_delay_ms * NS_PER_MS) // _FRAME_NS
        hi = (t + cfg.lead_ms * NS_PER_MS) // _FRAME_NS
        return max((self._ref.get(s, 0.0) for s in range(lo, hi + 1)), default=0.0)

    def playing(self, t: Nanos) -> bool:
        """Whether the voice may be sounding at ``t``."""
        return self._echo(t) > self.config.floor

    def _user_frames(self, start: Nanos, end: Nanos) -> int:
        cfg = self.config
        gain = self.gain if self.gain >= 0 else cfg.initial_gain
        return sum(
            1 for t, rms in self._mic
            if start <= t < end and rms > cfg.floor and rms > cfg.ratio * gain * self._echo(t)
        )

    # -- decisions ------------------------------------------------------------------------

    def speech_started(self, utterance: str, start: Nanos) -> Verdict | None:
        """An utterance began at ``start``: ``"user"`` now when nothing plays, else None
        (held: ask :meth:`poll`)."""
        self._unlearn(start)
        if not self.playing(start) and not self.playing(start + self.config.decide_ms * NS_PER_MS):
            self._user[utterance] = start
            return "user"
        self._held[utterance] = _Held(start)
        return None

    def _unlearn(self, start: Nanos) -> None:
        """Ratios from ``learn_delay_ms`` before an utterance's start are not learned: the
        VAD reports a start late, and those frames may be the user's onset."""
        since = start - self.config.learn_delay_ms * NS_PER_MS
        while self._learning and self._learning[-1][0] >= since:
            self._learning.pop()

    def poll(self, utterance: str, now: Nanos) -> Verdict | None:
        """The verdict on a held utterance once the mic audio up to ``now`` is in (None: not
        yet). An ``echo`` verdict turns into ``user`` if the user's voice appears later."""
        held = self._held.get(utterance)
        if held is None:
            return "user"
        cfg = self.config
        window_end = held.start + cfg.decide_ms * NS_PER_MS
        if held.verdict is None:
            lookback = held.start - cfg.lookback_ms * NS_PER_MS
            if self._user_frames(lookback, window_end) >= cfg.min_frames:
                held.verdict = "user"
                self._user[utterance] = held.start
            elif self._mic and self._mic[-1][0] >= window_end and now >= window_end:
                held.verdict = "echo"
        elif held.verdict == "echo":
            recent = now - cfg.decide_ms * NS_PER_MS
            if self._user_frames(max(recent, window_end), now + _FRAME_NS) >= cfg.min_frames:
                held.verdict = "user"
                self._user[utterance] = held.start
        return held.verdict

    def ended(self, utterance: str) -> None:
        """The utterance's speech is over (the VAD's stop): the gain may learn again."""
        self._user.pop(utterance, None)

    def forget(self, utterance: str) -> None:
        """The utterance ended."""
        self._held.pop(utterance, None)
