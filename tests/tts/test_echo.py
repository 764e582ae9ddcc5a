"""The echo gate core: explicit times, synthetic reference/mic signals (pure, no clock)."""

from __future__ import annotations

import numpy as np

from streamkit.core.clock import NS_PER_MS
from streamkit.tts.echo import EchoGateConfig, EchoGateCore

MS = NS_PER_MS
RATE = 16_000


def voice(seconds: float, seed: int, level: float = 0.2) -> np.ndarray:
    """Speech-like: noise bursts of 120 ms with 60 ms pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    envelope = ((np.arange(n) // (RATE * 60 // 1000)) % 3 != 2).astype(np.float32)
    return (level * rng.standard_normal(n) * envelope).astype(np.float32)


def feed(core: EchoGateCore, start: int, reference: np.ndarray, mic: np.ndarray,
         delay_ms: int = 60) -> None:
    """The voice plays ``reference`` from ``start``; the mic hears ``mic`` from ``start``."""
    core.reference(start, reference, RATE)
    step = RATE // 50
    for i in range(0, len(mic), step):
        core.mic(start + i * 1_000_000_000 // RATE, mic[i : i + step], RATE)


def echo_of(reference: np.ndarray, gain: float, delay_ms: int) -> np.ndarray:
    shift = RATE * delay_ms // 1000
    return gain * np.concatenate([np.zeros(shift, np.float32), reference[:-shift]])


def test_nothing_playing_means_the_user_at_once() -> None:
    core = EchoGateCore()
    assert core.speech_started("u1", 1_000 * MS) == "user"


def test_the_echo_of_our_voice_is_dropped() -> None:
    core = EchoGateCore()
    reference = voice(3.0, seed=1)
    feed(core, 0, reference, echo_of(reference, 0.5, 80))
    assert core.speech_started("u1", 500 * MS) is None  # held: the voice plays
    assert core.poll("u1", 2_000 * MS) == "echo"
    assert 0.3 < core.gain < 0.7  # learned from the echo


def test_the_user_over_the_echo_passes() -> None:
    core = EchoGateCore()
    reference = voice(3.0, seed=1)
    mic = echo_of(reference, 0.3, 80)
    mic[RATE * 1500 // 1000 :] += voice(1.5, seed=2, level=0.3)  # the user, from 1.5 s
    feed(core, 0, reference, mic[: RATE * 1500 // 1000])
    assert core.speech_started("u1", 1_500 * MS) is None
    step = RATE // 50
    verdict = None
    for i in range(RATE * 1500 // 1000, len(mic), step):
        core.mic(i * 1_000_000_000 // RATE, mic[i : i + step], RATE)
        verdict = core.poll("u1", (i + step) * 1_000_000_000 // RATE)
        if verdict is not None:
            break
    assert verdict == "user"
    assert i < RATE * 1900 // 1000  # decided within 400 ms of the user's onset


def test_an_echo_utterance_is_promoted_when_the_user_speaks_up_in_it() -> None:
    core = EchoGateCore(EchoGateConfig(min_frames=4))
    reference = voice(4.0, seed=3)
    mic = echo_of(reference, 0.4, 60)
    mic[RATE * 2 :] += voice(2.0, seed=4, level=0.4)
    feed(core, 0, reference, mic[: RATE])
    assert core.speech_started("u1", 200 * MS) is None
    assert core.poll("u1", 1_000 * MS) == "echo"
    step = RATE // 50
    verdicts = []
    for i in range(RATE, len(mic), step):
        core.mic(i * 1_000_000_000 // RATE, mic[i : i + step], RATE)
        verdicts.append(core.poll("u1", (i + step) * 1_000_000_000 // RATE))
    assert verdicts[0] == "echo"
    assert "user" in verdicts
    assert verdicts.index("user") * 20 >= 1000  # not before the user spoke (at 2 s)


def test_behind_echo_cancellation_a_quiet_user_still_passes() -> None:
    core = EchoGateCore()
    reference = voice(3.0, seed=5, level=0.3)
    mic = np.zeros_like(reference)  # the browser removed the echo
    mic[RATE * 2 :] = voice(1.0, seed=6, level=0.05)  # a quiet user
    feed(core, 0, reference, mic[: RATE * 2])
    assert core.gain < 0.1
    assert core.speech_started("u1", 2_000 * MS) is None
    feed(core, 2_000 * MS, np.zeros(0, np.float32), mic[RATE * 2 :])
    assert core.poll("u1", 3_000 * MS) == "user"


def test_a_clear_barge_in_is_decided_when_the_vad_reports_it() -> None:
    # the VAD says "speech from 1.56 s" 60 ms after the user's onset at 1.5 s (its windows
    # cross the threshold late); the mic audio up to the VAD's report is already in
    core = EchoGateCore()
    reference = voice(3.0, seed=1)
    mic = echo_of(reference, 0.3, 80)
    onset = RATE * 1500 // 1000
    mic[onset:] += voice(1.5, seed=2, level=0.3)
    reported = RATE * 1600 // 1000  # the VAD's window 1.56–1.592 s is complete
    feed(core, 0, reference, mic[:reported])
    assert core.speech_started("u1", 1_560 * MS) is None  # held: the voice plays
    assert core.poll("u1", 1_600 * MS) == "user"
    # without the look-back it needs ~4 frames after the VAD's start: not yet
    late = EchoGateCore(EchoGateConfig(lookback_ms=20))
    feed(late, 0, reference, mic[:reported])
    late.speech_started("u1", 1_560 * MS)
    assert late.poll("u1", 1_600 * MS) is None


def test_the_look_back_does_not_turn_the_echo_into_the_user() -> None:
    core = EchoGateCore()
    reference = voice(3.0, seed=7, level=0.3)
    feed(core, 0, reference, echo_of(reference, 0.5, 120))
    for start_ms in (600, 1_000, 1_500, 2_000):
        assert core.speech_started(f"u{start_ms}", start_ms * MS) is None
        assert core.poll(f"u{start_ms}", 2_900 * MS) == "echo"


def test_a_barge_in_does_not_teach_the_gain_the_users_voice() -> None:
    # the user talks over the voice for 1.5 s; then the voice speaks again (echo only) and a
    # second barge-in must pass as fast as the first
    reference = voice(6.0, seed=1)
    mic = echo_of(reference, 0.3, 80)
    mic[RATE * 1500 // 1000 : RATE * 3000 // 1000] += voice(1.5, seed=2, level=0.3)
    mic[RATE * 4500 // 1000 :] += voice(1.5, seed=3, level=0.3)
    core = EchoGateCore()
    core.reference(0, reference, RATE)
    step = RATE // 50
    decided: dict[str, int] = {}
    for i in range(0, len(mic), step):
        t = i * 1_000_000_000 // RATE
        core.mic(t, mic[i : i + step], RATE)
        for uid, start_ms in (("u1", 1_520), ("u2", 4_520)):
            if t == start_ms * MS:
                assert core.speech_started(uid, t) is None
            if t >= start_ms * MS and uid not in decided and core.poll(uid, t + 20 * MS):
                assert core.poll(uid, t + 20 * MS) == "user"
                decided[uid] = t // MS - start_ms
                core.forget(uid)  # passed: the stage releases it (the user speaks on)
        if t == 3_200 * MS:
            core.ended("u1")  # the VAD's stop after the first barge-in
    assert core.gain < 0.5  # it learned the echo (0.3), not the user
    assert decided["u2"] <= decided["u1"] + 20


def test_the_users_onset_before_the_vads_late_start_is_not_learned_as_echo() -> None:
    # no echo at all (headphones); the user starts at 1.0 s over a short answer, and the VAD
    # reports the start at 1.25 s: the 250 ms in between must not teach the gain
    reference = voice(4.0, seed=1, level=0.2)
    mic = np.zeros_like(reference)
    mic[RATE:] = voice(3.0, seed=2, level=0.2)
    core = EchoGateCore()
    core.reference(0, reference, RATE)
    step = RATE // 50
    for i in range(0, RATE * 1280 // 1000, step):
        core.mic(i * 1_000_000_000 // RATE, mic[i : i + step], RATE)
    assert core.speech_started("u1", 1_250 * MS) is None
    assert core.poll("u1", 1_280 * MS) == "user"
    assert core.gain < 0.1
