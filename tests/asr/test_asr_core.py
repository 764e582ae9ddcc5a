"""AsrCore policy with a fake VAD and a fake (ideal) decoder: fast, no model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from streamkit.asr.core import AsrConfig, AsrCore, AsrOutput, DecodeJob
from streamkit.asr.hypothesis import CommitPolicy
from streamkit.asr.vad import WINDOW, VadConfig
from streamkit.asr.whisper import DecodedWord, DecodeResult
from streamkit.core.clock import NS_PER_MS, NS_PER_S
from streamkit.core.events import (
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
)

RATE = 16_000
BASE = 5 * NS_PER_S  # shared-clock pts of the first sample


def energy_vad(
    samples: npt.NDArray[np.float32], state: list[npt.NDArray[np.float32]]
) -> npt.NDArray[np.float32]:
    data = np.concatenate([state[0], samples])
    n = len(data) // WINDOW
    state[0] = data[n * WINDOW :]
    blocks = data[: n * WINDOW].reshape(-1, WINDOW)
    return (np.abs(blocks).max(axis=1) > 0.05).astype(np.float32)


def make_core(**kw: object) -> AsrCore:
    state = [np.zeros(0, dtype=np.float32)]
    cfg = AsrConfig(vad=VadConfig(pause_s=0.25, hangover_s=0.5), **kw)  # type: ignore[arg-type]
    return AsrCore(cfg, lambda s: energy_vad(s, state), prefix="t")


# speech: "go forward ten meters", a 0.4 s pause, "now" — absolute seconds in the stream
SCRIPT = [
    ("go", 0.50, 0.80),
    ("forward", 0.85, 1.40),
    ("ten", 1.45, 1.80),
    ("meters", 1.85, 2.30),
    ("now", 2.70, 3.00),
]


def signal(seconds: float) -> npt.NDArray[np.float32]:
    audio = np.zeros(int(seconds * RATE), dtype=np.float32)
    for _, start, end in SCRIPT:
        audio[int(start * RATE) : int(end * RATE)] = 0.3
    return audio


def ideal_decode(job: DecodeJob) -> DecodeResult:
    """Words fully inside the job's window, times relative to the window start."""
    t0 = (job.start - BASE) / NS_PER_S
    t1 = (job.end - BASE) / NS_PER_S
    words = [
        DecodedWord(w, s - t0, e - t0, 0.9) for w, s, e in SCRIPT if s >= t0 - 0.01 and e <= t1
    ]
    return DecodeResult(words, " ".join(w.text for w in words), -0.1, 0.01, 1.0, 0.0)


def run(
    core: AsrCore,
    audio: npt.NDArray[np.float32],
    chunk: int = 320,
    complete_each: bool = True,
) -> list[AsrOutput]:
    """Push ``audio`` right after what ``core`` already has, in ``chunk``-sample packets."""
    out: list[AsrOutput] = []
    first = core.position if core.position else BASE
    for begin in range(0, len(audio), chunk):
        out += core.push(audio[begin : begin + chunk], first + begin * NS_PER_S // RATE)
        if complete_each:
            out += drain(core)
    return out


def drain(
    core: AsrCore, decode: Callable[[DecodeJob], DecodeResult] = ideal_decode
) -> list[AsrOutput]:
    """Runs every job ``core`` hands out at once with ``decode(job)``, until it has none."""
    out: list[AsrOutput] = []
    while True:
        ready, job = core.poll()
        out += ready
        if job is None:
            return out
        out += core.complete(job, decode(job))


def finals(out: list[AsrOutput]) -> list[TranscriptFinal]:
    return [o.payload for o in out if isinstance(o.payload, TranscriptFinal)]


def test_events_words_and_order() -> None:
    core = make_core()
    out = run(core, signal(4.0))
    out += core.finish() + drain(core)
    kinds = [type(o.payload).__name__ for o in out]
    assert kinds[0] == "SpeechStarted"
    started = out[0].payload
    assert isinstance(started, SpeechStarted)
    # speech starts at the first voiced window (0.5 s, rounded down to a 32 ms window)
    assert abs(started.t - (BASE + 500 * NS_PER_MS)) <= 32 * NS_PER_MS
    text = " ".join(f.text for f in finals(out) if f.text)
    assert text == "go forward ten meters now"
    assert finals(out)[-1].is_last
    assert any(isinstance(o.payload, TranscriptPartial) for o in out)
    assert any(isinstance(o.payload, SpeechStopped) for o in out)
    # every word is on the shared clock: audio pts + offset
    word = next(w for f in finals(out) for w in f.words if w.text == "meters")
    assert word.start == BASE + 1850 * NS_PER_MS
    assert word.end == BASE + 2300 * NS_PER_MS
    # all events of one utterance carry its id
    assert {o.uid for o in out} == {"t-1"}


def test_pause_commits_everything_before_it_once_confirmed() -> None:
    # no partial decodes: only the pause can commit; with pause_agreement=1 it needs no
    # earlier hypothesis, with the default (2) it waits for one more pass to confirm
    core = make_core(partials=False, commit=CommitPolicy(pause_agreement=1))
    out = run(core, signal(2.62))  # up to just after the 0.25 s pause following "meters"
    assert " ".join(f.text for f in finals(out)) == "go forward ten meters"
    assert not any(f.is_last for f in finals(out))

    core = make_core(partials=False)
    out = run(core, signal(2.62))
    assert finals(out) == []
    out += run(core, np.zeros(int(0.7 * RATE), np.float32))  # speech ends: final decode
    assert " ".join(f.text for f in finals(out) if f.text) == "go forward ten meters"


def test_pause_commits_what_the_last_partial_said() -> None:
    core = make_core()  # partials every 0.65 s of audio, then the pause decode
    out = run(core, signal(2.62))
    # the last partial ended before "meters" did: only the pause decode heard it, so it waits
    assert " ".join(f.text for f in finals(out)) == "go forward ten"
    out += run(core, signal(4.0)[int(2.62 * RATE) :]) + core.finish() + drain(core)
    assert " ".join(f.text for f in finals(out) if f.text) == "go forward ten meters now"


def test_end_of_speech_finalises_at_once() -> None:
    core = make_core()
    audio = signal(4.0)
    out = run(core, audio[: int(3.6 * RATE)])  # "now" ends at 3.0; hangover 0.5 s
    last = [f for f in finals(out) if f.is_last]
    assert len(last) == 1
    stopped = [o.payload for o in out if isinstance(o.payload, SpeechStopped)]
    assert abs(stopped[0].t - (BASE + 3 * NS_PER_S)) <= 32 * NS_PER_MS


def test_commit_forces_final_and_new_speech_opens_new_utterance() -> None:
    core = make_core()
    audio = signal(4.0)
    out = run(core, audio[: int(1.5 * RATE)])
    out += core.commit() + drain(core)
    assert finals(out)[-1].is_last
    out2 = run(core, np.full(RATE // 2, 0.3, dtype=np.float32))
    started = [o.payload for o in out2 if isinstance(o.payload, SpeechStarted)]
    assert started
    assert started[0].utterance_id == "t-2"


def test_behind_compute_coalesces_partials_and_never_drops_audio() -> None:
    core = make_core()
    audio = signal(4.0)
    out = run(core, audio[: int(1.0 * RATE)], complete_each=False)
    _, job = core.poll()
    assert job is not None
    # compute is slow: 1.2 s more audio arrives while the job runs
    out += run(core, audio[int(1.0 * RATE) : int(2.2 * RATE)], complete_each=False)
    assert core.poll()[1] is None  # one job at a time
    assert core.lag_ns() >= 1100 * NS_PER_MS
    out += core.complete(job, ideal_decode(job))
    _, nxt = core.poll()
    assert nxt is not None
    assert nxt.end == BASE + int(2.2 * NS_PER_S)  # the next decode covers all that arrived
    assert nxt.start <= job.start
    out += core.complete(nxt, ideal_decode(nxt))
    out += run(core, audio[int(2.2 * RATE) :]) + core.finish() + drain(core)
    assert " ".join(f.text for f in finals(out) if f.text) == "go forward ten meters now"
    assert core.lag_ns() == 0
    assert core.idle


def test_silence_and_short_gap_do_not_decode() -> None:
    core = make_core()
    out = run(core, np.zeros(3 * RATE, dtype=np.float32))
    assert out == []
    out = core.gap(BASE + 3 * NS_PER_S, BASE + 4 * NS_PER_S)
    assert out == []
    assert core.position == BASE + 4 * NS_PER_S


def test_long_gap_ends_the_utterance() -> None:
    core = make_core()
    out = run(core, np.full(RATE, 0.3, dtype=np.float32))
    out += core.gap(BASE + NS_PER_S, BASE + 10 * NS_PER_S) + drain(core)
    assert any(isinstance(o.payload, SpeechStopped) for o in out)
    assert finals(out)[-1].is_last


def test_wordless_speech_keeps_the_window_bounded() -> None:
    """60 s the VAD calls speech but the decoder finds no word in: memory stays bounded."""
    core = make_core()
    loud = np.full(60 * RATE, 0.3, dtype=np.float32)
    longest = 0
    for begin in range(0, len(loud), 3200):
        core.push(loud[begin : begin + 3200], BASE + begin * NS_PER_S // RATE)
        while True:
            _, job = core.poll()
            if job is None:
                break
            longest = max(longest, len(job.audio))
            core.complete(job, DecodeResult([], "", -2.0, 0.9, 1.0, 0.0, rejected="no_speech"))
    cfg = core.config
    assert longest <= (2 * cfg.max_window_s + cfg.tick_s) * RATE + 3200
    assert core.lag_ns() < NS_PER_S


def test_saturated_model_widens_partials_but_never_defers_finals() -> None:
    core = make_core(tick_s=0.65, busy_tick_s=1.0)
    audio = signal(4.0)

    def upto(t0: float, t1: float) -> list[AsrOutput]:
        return run(core, audio[int(t0 * RATE) : int(t1 * RATE)], complete_each=False)

    upto(0.0, 1.1)  # speech from 0.5 s: 0.9 s of window with the 0.3 s pre-roll
    assert core.poll(saturated=True)[1] is None  # due at tick_s, but the model is busy
    _, job = core.poll(saturated=False)  # a worker is free: the partial runs now
    assert job is not None
    assert job.kind == "partial"
    core.complete(job, ideal_decode(job))
    upto(1.1, 2.0)  # 0.9 s undecoded: below busy_tick_s
    assert core.poll(saturated=True)[1] is None
    upto(2.0, 2.2)  # 1.1 s undecoded ≥ busy_tick_s: decode anyway, never starve
    _, job = core.poll(saturated=True)
    assert job is not None
    assert job.kind == "partial"
    assert job.end == BASE + int(2.2 * NS_PER_S)  # it covers all the audio, none skipped
    core.complete(job, ideal_decode(job))
    out = upto(2.2, 4.0) + core.finish()
    kinds = []
    while True:  # saturated all the way: pause and final decodes still run at once
        ready, job = core.poll(saturated=True)
        out += ready
        if job is None:
            break
        kinds.append(job.kind)
        out += core.complete(job, ideal_decode(job))
    assert kinds
    assert kinds[-1] in ("pause", "final")
    assert finals(out)[-1].is_last
    assert core.idle
