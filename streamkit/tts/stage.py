"""The TTS stage: speak the responder's answer as it streams, stop at once when told to.

:class:`TtsStage` has inputs

- ``"response"``: the responder's ``Packet[ResponseDelta | ResponseDone]`` (any other packet
  passes through untouched) and its internal ``ResponseHeld`` (consumed, never forwarded);
- ``"speech"`` (optional): VAD/transcript events; a :class:`~streamkit.core.events.SpeechStarted`
  while speaking is a barge-in (an echo gate upstream decides what reaches it);

and output ``"out"``: every input response packet, forwarded at once (text never waits for
the voice), plus ``Packet[ResponseAudio]`` chunks (stream ``speech_out``; ``pts`` = playout
time on the shared clock, ``lineage`` = utterance id) and one ``Packet[ResponseAudioDone]`` per
spoken answer.

Per answer: deltas go through a :class:`~streamkit.tts.chunker.SpeechChunker`; each piece is
synthesised by the shared :class:`~streamkit.tts.backend.TTSEngine` (a synth task that runs
ahead of playout, bounded by ``max_ahead_ms`` of audio), cut into ``chunk_ms`` frames, placed on
the playout schedule (:class:`~streamkit.tts.playout.Playout`) and sent ``lead_ms`` ahead of
its playout time by a pacer task (anchor pacing: ``sleep_until(send_at)``, never summed sleeps).

Ahead of the release: ``ResponseHeld`` (what a held speculation has generated so far, after
each token) starts the synthesis of its first piece as soon as the text has one
(:class:`~streamkit.tts.prepared.PreparedPiece`); when the released answer's first piece is
that same text, its audio is ready (counters ``tts.<engine>.prepared`` and
``.prepared_used``), else it is dropped. The voice's lead-in
silence before the answer's first sound is not sent (:func:`~streamkit.tts.backend.lead_in`:
Piper's 40-80 ms only delay the answer).

Stopping: barge-in, :meth:`TtsStage.cancel` (``response.cancel``), a ``ResponseDone`` that says
cancelled, a newer answer or an in-band ``Flush`` cancel the answer's tasks at once; the pacer
re-checks before every frame, so no frame of the old answer is put after the cancel was seen.
An answer can be cut until its last frame has *played* (the client holds up to ``lead_ms``
sent ahead), and ``ResponseAudioDone(cancelled=True)`` goes out at once — before a synthesis
in progress ends — so the client drops what it holds. It says what had been heard (frames
whose playout had begun); ``on_heard(done, answer_text)`` lets the pipeline truncate the
history (like the Realtime API's ``conversation.item.truncate``).

Metrics: lineage mark ``tts.first_audio`` per utterance; histograms ``tts.<engine>.first_audio``
(first delta → first frame sent), ``tts.<engine>.eos_to_first_audio`` (end of speech → first
frame), ``tts.<engine>.synth`` (compute per piece); gauge ``tts.<engine>.rtf`` (last piece);
counters ``tts.<engine>.cancelled``, ``.underruns`` (a frame not ready by its playout time),
``.synth_ns`` and ``.audio_ns`` (their ratio: the real-time factor over the session),
``.errors`` (a voice that failed: logged once per answer, the rest of that answer is text
only; the session lives on).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_MS, Nanos
from streamkit.core.events import (
    ResponseAudio,
    ResponseAudioDone,
    ResponseDelta,
    ResponseDone,
    ResponseHeld,
    SpeechStarted,
)
from streamkit.core.media import samples_to_ns
from streamkit.core.packet import EndOfStream, Flush, Packet
from streamkit.core.stage import InPort, OutPort, StageContext
from streamkit.tts.backend import TTSEngine, lead_in, pcm16_bytes, speakable
from streamkit.tts.chunker import ChunkerConfig, SpeechChunker
from streamkit.tts.playout import Playout
from streamkit.tts.prepared import PreparedPiece

__all__ = ["HeardCallback", "TtsConfig", "TtsStage"]

log = logging.getLogger("streamkit.tts")

HeardCallback = Callable[[ResponseAudioDone, str], None]
"""``(done, answer_text)``: called once per spoken answer after both its voice stopped and its
``ResponseDone`` was seen (``answer_text`` = the full answer)."""


@dataclass(frozen=True, slots=True)
class TtsConfig:
    """Options of the TTS stage.

    Attributes:
        name: stage name.
        chunk_ms: frame length sent to clients (the cancellation granularity).
        lead_ms: frames are sent this far ahead of their playout time (client buffer).
        max_ahead_ms: synthesised audio waiting to be sent, at most (bounds memory).
        enabled: speak at all (clients switch it with ``session.update``).
        chunker: where answers are cut into pieces.
    """

    name: str = "tts"
    chunk_ms: int = 40
    lead_ms: int = 200
    max_ahead_ms: int = 60_000
    enabled: bool = True
    chunker: ChunkerConfig = field(default_factory=ChunkerConfig)


@dataclass
class _Job:
    response_id: str
    utterance_id: str
    epoch: int
    eos: Nanos
    started: Nanos
    chunker: SpeechChunker
    playout: Playout
    pieces: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    cancelled: bool = False
    reason: str = ""
    stopped_at: Nanos | None = None
    answer: str | None = None
    done: ResponseAudioDone | None = None
    reported: bool = False
    first_sent: bool = False


_END = None
_FrameItem = tuple[str, npt.NDArray[np.float32] | None, float, int]
"""(piece text, samples or None for a piece marker / the end, progress in the piece, Hz)."""


class TtsStage:
    """The TTS stage (see the module docstring).

    Args:
        engine: the shared voice (loaded once per process).
        config: options; ``config.name`` is the stage name.
        on_heard: called with what the user heard of each spoken answer.
    """

    def __init__(self, engine: TTSEngine, config: TtsConfig | None = None,
                 on_heard: HeardCallback | None = None) -> None:
        self.engine = engine
        self.config = config or TtsConfig()
        self.name = self.config.name
        self.enabled = self.config.enabled
        self.on_heard = on_heard
        self._job: _Job | None = None
        self._prepared = PreparedPiece(engine, self.config.chunker)
        self._seq = itertools.count()
        self._ctx: StageContext | None = None
        self._out: OutPort | None = None
        self._group: asyncio.TaskGroup | None = None
        self._m = f"tts.{engine.name}"

    # -- public control -------------------------------------------------------------------

    def cancel(self, reason: str = "client") -> bool:
        """Stop the answer being spoken now. Returns whether one was. Never blocks."""
        job = self._job
        if job is None or job.cancelled or job.done is not None:
            return False
        job.cancelled = True
        job.reason = reason
        job.stopped_at = self._ctx.clock.now() if self._ctx is not None else None
        for task in job.tasks:
            task.cancel()
        if self._ctx is not None:
            self._ctx.metrics.counter(f"{self._m}.cancelled").inc()
        return True

    def set_enabled(self, on: bool) -> None:
        """Speech on/off (off also stops the answer being spoken)."""
        self.enabled = on
        if not on:
            self.cancel("speech off")

    @property
    def speaking(self) -> bool:
        """An answer is being synthesised or played."""
        return self._job is not None and self._job.done is None

    def speaking_until(self) -> Nanos | None:
        """Playout end of the audio sent so far (ns), while an answer is being spoken."""
        job = self._job
        if job is None or job.done is not None:
            return None
        return job.playout.end

    # -- stage ---------------------------------------------------------------------------

    async def setup(self, ctx: StageContext) -> None:
        await self.engine.warmup()

    async def run(self, ctx: StageContext) -> None:
        self._ctx = ctx
        self._out = ctx.output("out")
        for counter in ("cancelled", "underruns", "errors"):
            ctx.metrics.counter(f"{self._m}.{counter}")
        async with asyncio.TaskGroup() as group:
            self._group = group
            reader = None
            if "speech" in ctx.inputs:
                reader = group.create_task(self._read_speech(ctx.input("speech")))
            await self._read_responses(ctx.input("response"))
            job = self._job
            if job is not None and job.answer is None and not job.cancelled:
                # the input ended without this answer's ResponseDone: speak what came, then end
                for piece in job.chunker.flush():
                    job.pieces.put_nowait(piece)
                job.pieces.put_nowait(_END)
            if job is not None and job.tasks:
                await asyncio.wait(job.tasks)
            if reader is not None:
                reader.cancel()

    async def _read_speech(self, port: InPort) -> None:
        async for item in port:
            if isinstance(item, Packet) and isinstance(item.payload, SpeechStarted):
                self.cancel("barge-in")

    async def _read_responses(self, port: InPort) -> None:
        assert self._out is not None
        while True:
            item = await port.get()
            if isinstance(item, EndOfStream):
                return
            if isinstance(item, Flush):
                self.cancel("flush")
                continue
            if not isinstance(item, Packet):
                continue
            if isinstance(item.payload, ResponseHeld):  # internal: never forwarded
                self._prepare(item.payload)
                continue
            await self._out.put(item)
            event = item.payload
            if isinstance(event, ResponseDelta):
                job = self._job
                if job is not None and job.response_id == event.response_id:
                    if item.epoch > job.epoch:
                        self.cancel("new epoch")
                else:
                    if job is not None:
                        self.cancel("new answer")
                    if not self.enabled:
                        continue
                    job = self._start(item, event)
                if not job.cancelled:
                    for piece in job.chunker.feed(event.text):
                        job.pieces.put_nowait(piece)
            elif isinstance(event, ResponseDone):
                job = self._job
                if job is None or job.response_id != event.response_id:
                    continue
                job.answer = event.text
                if event.cancelled:
                    self.cancel("answer cancelled")
                elif not job.cancelled:
                    for piece in job.chunker.flush():
                        job.pieces.put_nowait(piece)
                    job.pieces.put_nowait(_END)
                self._report(job)

    def _prepare(self, held: ResponseHeld) -> None:
        """Synthesise a held speculation's first piece ahead of its release."""
        group, ctx = self._group, self._ctx
        if not self.enabled or group is None or ctx is None:
            self._prepared.drop()  # speech off: nothing is prepared
        elif self._prepared.held(held, group):
            ctx.metrics.counter(f"{self._m}.prepared").inc()

    # -- one spoken answer -----------------------------------------------------------------

    def _start(self, item: Packet[object], event: ResponseDelta) -> _Job:
        assert self._ctx is not None
        assert self._group is not None
        now = self._ctx.clock.now()
        job = _Job(
            event.response_id,
            event.utterance_id,
            item.epoch,
            item.pts,
            now,
            SpeechChunker(self.config.chunker),
            Playout(self.config.lead_ms * NS_PER_MS),
        )
        self._job = job
        self._group.create_task(self._speak(job))
        return job

    async def _speak(self, job: _Job) -> None:
        assert self._ctx is not None
        frames: asyncio.Queue[_FrameItem] = asyncio.Queue(
            maxsize=max(1, self.config.max_ahead_ms // self.config.chunk_ms)
        )
        async with asyncio.TaskGroup() as group:
            job.tasks = [
                group.create_task(self._synthesize(job, frames)),
                group.create_task(self._pace(job, frames)),
            ]
            if job.cancelled:  # cancelled before the tasks existed
                for task in job.tasks:
                    task.cancel()
            # the pacer ends at once on a cancel, a synthesis may not (a thread call runs to its
            # end): say "stopped" now, so clients flush at once (not after a piece nobody hears)
            await asyncio.wait(job.tasks[1:])
            now = self._ctx.clock.now()
            if job.cancelled:
                stopped = job.stopped_at if job.stopped_at is not None else now
                text, played = job.playout.heard(stopped)
                end = min(stopped, job.playout.end or stopped)
            else:
                text, played = job.playout.spoken()
                end = job.playout.end or now
            job.done = ResponseAudioDone(
                job.response_id, job.utterance_id, text, played, end, job.cancelled, job.reason
            )
            assert self._out is not None
            await self._out.put(Packet("speech_out", next(self._seq), end, 0, job.done,
                                       job.epoch, job.utterance_id))
            self._report(job)

    def _report(self, job: _Job) -> None:
        if job.reported or job.done is None or job.answer is None:
            return
        job.reported = True
        if self.on_heard is not None:
            self.on_heard(job.done, job.answer)

    async def _synthesize(
        self,
        job: _Job,
        frames: asyncio.Queue[_FrameItem],
    ) -> None:
        """Pieces → engine → frames of ``chunk_ms`` (one frame held back, so the last frame
        of a piece is known to be the last: it carries the piece's remaining words)."""
        assert self._ctx is not None
        ctx, rate = self._ctx, self.engine.sample_rate
        lead = True  # no audio of the answer yet: the voice's lead-in silence is skipped
        first = True  # the answer's first piece (its audio may have been prepared)
        while (piece := await job.pieces.get()) is not _END:
            text = speakable(piece)
            await frames.put((piece, None, 0.0, rate))  # the piece's text (even when silent)
            prepared = self._prepared.take(job.response_id, text) if first else None
            if prepared is not None:
                ctx.metrics.counter(f"{self._m}.prepared_used").inc()
            first = False
            if not text:
                continue
            step = max(1, rate * self.config.chunk_ms // 1000)
            estimate = max(1, len(text) * rate * 65 // 1000)  # ~65 ms per character
            held = np.zeros(0, np.float32)
            sent = 0
            began = ctx.clock.now()
            speech = prepared or self.engine.synthesize(text)
            try:
                async for chunk in speech:
                    rate = chunk.sample_rate
                    samples = chunk.samples
                    if lead:  # the voice's lead-in silence only delays the answer: skip it
                        start = lead_in(samples, rate)
                        samples = samples[start:]
                        lead = start == len(chunk.samples)  # all silence: look further
                    held = np.concatenate([held, samples]) if len(held) else samples
                    estimate = max(estimate, sent + len(held))
                    while len(held) > step:  # keep ≥ 1 frame back until the piece ends
                        frame, held = held[:step], held[step:]
                        sent += len(frame)
                        await frames.put(("", frame, min(0.999, sent / estimate), rate))
            except Exception as error:  # a voice that fails (server gone…) costs the voice only
                ctx.metrics.counter(f"{self._m}.errors").inc()
                log.warning("tts %s: %s; the rest of answer %s is text only",
                            self.engine.name, error, job.response_id)
                if len(held):
                    await frames.put(("", held, 1.0, rate))
                break
            finally:
                await speech.aclose()
            audio_ns = samples_to_ns(sent + len(held), rate)
            spent = ctx.clock.now() - began
            ctx.metrics.histogram(f"{self._m}.synth").observe(spent)
            ctx.metrics.counter(f"{self._m}.synth_ns").inc(spent)
            ctx.metrics.counter(f"{self._m}.audio_ns").inc(audio_ns)
            if audio_ns > 0:
                ctx.metrics.gauge(f"{self._m}.rtf").set(spent / audio_ns)
            if len(held):
                await frames.put(("", held, 1.0, rate))
        await frames.put(("", None, -1.0, rate))

    async def _pace(
        self,
        job: _Job,
        frames: asyncio.Queue[_FrameItem],
    ) -> None:
        assert self._ctx is not None
        assert self._out is not None
        ctx, out, playout = self._ctx, self._out, job.playout
        index = 0
        while True:
            piece, samples, progress, rate = await frames.get()
            if samples is None:
                if progress < 0:  # all sent; the answer plays on (≤ lead) and can be cut till
                    await ctx.clock.sleep_until(playout.end or ctx.clock.now())  # its end
                    return
                playout.start_piece(piece)
                continue
            now = ctx.clock.now()
            before = playout.end
            frame = playout.place(samples_to_ns(len(samples), rate), now, progress)
            if before is not None and frame.pts > before:
                ctx.metrics.counter(f"{self._m}.underruns").inc()
            await ctx.clock.sleep_until(frame.send_at)
            if job.cancelled:
                return
            event = ResponseAudio(
                job.response_id, job.utterance_id, index, frame.pts, rate,
                pcm16_bytes(samples), frame.text,
            )
            await out.put(
                Packet("speech_out", next(self._seq), frame.pts, frame.duration, event,
                       job.epoch, job.utterance_id)
            )
            playout.sent += 1
            index += 1
            if not job.first_sent:
                job.first_sent = True
                sent_at = ctx.clock.now()
                ctx.metrics.lineage.mark(job.utterance_id, "tts.first_audio", sent_at)
                ctx.metrics.histogram(f"{self._m}.first_audio").observe(sent_at - job.started)
                if job.eos:
                    ctx.metrics.histogram(f"{self._m}.eos_to_first_audio").observe(
                        sent_at - job.eos
                    )

