"""The client side of the spoken answer: the audio as heard, played and/or saved.

:class:`AnswerAudio` takes the ``response.audio`` frames a :class:`~streamkit.transport.client
.Client` receives (its ``on_audio``) and the ``response.audio.done`` events, and keeps the
answers' audio **as a listener hears it**: each answer starts when its first frame arrives
(local clock) or right after the previous answer, its frames follow their playout times
(``capture_ns``; a gap where the voice fell behind), and a cancelled answer is cut where the
server stopped it (``end``) — the queued rest is dropped, which is how playback stops at once
on barge-in. ``save(path)`` writes that timeline as a mono WAV; with ``play=True`` the same
audio goes to the default output device through sounddevice (no device: text only, one line
said so).

The sounddevice callback runs in PortAudio's thread; it only pops from a deque that the loop
appends to (a deque's append/popleft are thread-safe), never blocks.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import Nanos
from streamkit.core.events import ResponseAudioDone, ResponseDone
from streamkit.core.media import ns_to_samples
from streamkit.transport.protocol import OutputAudio

__all__ = ["AnswerAudio", "attach", "finish"]

log = logging.getLogger("streamkit.speaker")


@dataclass
class _Answer:
    first_pts: Nanos
    offset: int  # sample index of the answer's first sample on the timeline
    cut: int | None = None  # sample index where it was cancelled
    done: bool = False


@dataclass
class AnswerAudio:
    """Answer audio as heard (see the module docstring). ``play``: also to the speakers."""

    play: bool = False
    device: int | str | None = None
    """Output device for ``play`` (PortAudio index or name; None: the default)."""
    volume: float = 1.0
    """Gain applied to what is played (not to the saved timeline)."""
    rate: int | None = None
    origin: Nanos | None = None
    """Local time (ns) of sample 0 of the timeline (the first frame's arrival)."""
    chunks: list[tuple[int, str, npt.NDArray[np.float32]]] = field(default_factory=list)
    answers: dict[str, _Answer] = field(default_factory=dict)
    message: str = ""
    grace_ns: Nanos = 3_000_000_000
    """An answer whose text is done but whose voice has not started after this long is taken
    as not spoken (a server without a voice)."""
    _answered: dict[str, Nanos] = field(default_factory=dict)
    _stream: Any = None
    _queue: collections.deque[tuple[str, npt.NDArray[np.float32]]] = field(
        default_factory=collections.deque
    )
    _end: int = 0

    def on_audio(self, frame: OutputAudio, at: Nanos) -> None:
        """One received frame (``Client.on_audio``)."""
        self.add(frame.response_id, frame.header.capture_ns, frame.header.sample_rate,
                 frame.samples, at)

    def add(self, response_id: str, pts: Nanos, rate: int, samples: npt.NDArray[np.float32],
            at: Nanos) -> None:
        """One chunk of answer ``response_id`` (playout ``pts``, ``rate`` Hz) that arrived at
        ``at`` (local ns): from a client frame, or from the pipeline itself (the demo)."""
        if self.rate is None:
            self.rate, self.origin = rate, at
            if self.play:
                self._open(rate)
        if rate != self.rate:
            return  # one voice per session; a second rate is not mixed in
        assert self.origin is not None
        answer = self.answers.get(response_id)
        if answer is None:
            arrival = ns_to_samples(max(0, at - self.origin), rate)
            answer = self.answers[response_id] = _Answer(pts, max(arrival, self._end))
        if answer.cut is not None:
            return
        start = answer.offset + ns_to_samples(pts - answer.first_pts, rate)
        self.chunks.append((start, response_id, samples))
        self._end = max(self._end, start + len(samples))
        if self._stream is not None:
            self._queue.append((response_id, samples * np.float32(self.volume)))

    def on_event(self, event: object, at: Nanos = 0) -> None:
        """Server events (arrived at ``at``, local ns): a ``response.audio.done`` ends (or
        cuts) its answer; a ``response.done`` says an answer exists that may be spoken."""
        if isinstance(event, ResponseDone):
            self._answered.setdefault(event.response_id, at)
            return
        if not isinstance(event, ResponseAudioDone):
            return
        answer = self.answers.get(event.response_id)
        if answer is None:
            return
        answer.done = True
        if event.cancelled and self.rate is not None:
            answer.cut = answer.offset + ns_to_samples(
                max(0, event.end - answer.first_pts), self.rate
            )
            if self._queue:  # drop what this answer still has queued for the speakers
                self._queue = collections.deque(
                    item for item in self._queue if item[0] != event.response_id
                )

    def idle(self, now: Nanos) -> bool:
        """Every answer that started speaking has ended, and every finished answer either
        started speaking or did not within ``grace_ns``."""
        if not all(a.done for a in self.answers.values()):
            return False
        return all(
            rid in self.answers or now - at > self.grace_ns for rid, at in self._answered.items()
        )

    def timeline(self) -> npt.NDArray[np.float32]:
        """The audio as heard, from the first frame's arrival (mono float32 at ``rate``)."""
        if not self.chunks:
            return np.zeros(0, np.float32)
        out = np.zeros(max(s + len(c) for s, _, c in self.chunks), np.float32)
        for start, rid, samples in self.chunks:
            cut = self.answers[rid].cut
            if cut is not None:
                samples = samples[: max(0, cut - start)]
            out[start : start + len(samples)] = samples
        return out

    def save(self, path: Path) -> float:
        """Write the timeline as a mono 16-bit WAV; returns its duration (s)."""
        import soundfile as sf

        audio = self.timeline()
        sf.write(str(path), audio, self.rate or 16_000, subtype="PCM_16")
        return len(audio) / (self.rate or 16_000)

    def _open(self, rate: int) -> None:
        try:
            import sounddevice as sd

            sd.query_devices(self.device, kind="output")
            self._stream = sd.OutputStream(
                samplerate=rate, channels=1, dtype="float32", callback=self._callback,
                device=self.device,
            )
            self._stream.start()
        except Exception as error:  # no PortAudio, no output device
            self._stream = None
            self.message = f"no audio output device ({error}): answers as text only"
            log.warning(self.message)

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        out = np.zeros(frames, np.float32)
        filled = 0
        while filled < frames and self._queue:
            rid, samples = self._queue[0]
            take = min(frames - filled, len(samples))
            out[filled : filled + take] = samples[:take]
            filled += take
            if take == len(samples):
                self._queue.popleft()
            else:
                self._queue[0] = (rid, samples[take:])
        outdata[:, 0] = out

    def close(self) -> None:
        """Stop playing."""
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


def attach(client: Any, play: bool) -> AnswerAudio:
    """An :class:`AnswerAudio` fed by ``client`` (a :class:`~streamkit.transport.client.Client`):
    its frames and its ``response.audio.done`` events (any ``on_event`` set is kept)."""
    speaker = AnswerAudio(play=play)
    inner = client.on_event

    def on_event(item: Any) -> None:
        speaker.on_event(item.event, item.at)
        if inner is not None:
            inner(item)

    client.on_event = on_event
    client.on_audio = speaker.on_audio
    return speaker


async def finish(client: Any, speaker: AnswerAudio, timeout_s: float = 60.0) -> None:
    """Wait until every answer that started speaking has ended (or ``timeout_s``), then let the
    speakers play out what they hold and close them."""
    clock = client.clock
    deadline = clock.now() + round(timeout_s * 1e9)
    while not speaker.idle(clock.now()):
        if clock.now() >= deadline:
            log.warning("the voice did not finish within %.0f s", timeout_s)
            break
        await clock.sleep(100_000_000)
    while speaker._stream is not None and speaker._queue:
        await client.clock.sleep(50_000_000)
    speaker.close()
