"""The streaming ASR policy as a pure state machine (sans-I/O, sans-clock).

:class:`AsrCore` takes audio (``push``), tells its caller which window to decode next
(``poll`` → :class:`DecodeJob`), and turns decode results into transcript events
(``complete``). It never calls the model and never reads a clock; the async stage in
:mod:`streamkit.asr.stage` runs the jobs on the shared model slot.

Policy (what it decodes, when):

- Silero VAD gates everything: no speech, no decode (so no words on non-speech).
- ``SpeechStarted`` is emitted on the first voiced window (barge-in needs it early).
- While speech goes on, a *partial* decode of the utterance window runs whenever ``tick_s``
  of new audio arrived; LocalAgreement commits the words successive hypotheses agree on
  (``TranscriptFinal(is_last=False)``) and the rest is a ``TranscriptPartial``. How many
  must agree depends on the word (:class:`~streamkit.asr.hypothesis.CommitPolicy`:
  2 by default, 3 for uncertain words, 1 for very confident words well inside the window).
- A short *pause* (``vad.pause_s`` of silence; the turn policy's pause when one is attached)
  triggers a decode (``pause_beam_size``, greedy by default) that commits the words up to
  the pause that the previous pass said too; the others are its ``TranscriptPartial`` and
  wait for the next pass or the end of speech (the last words before a pause were heard
  with no right context).
- The end of speech (``vad.hangover_s`` of silence), :meth:`AsrCore.commit` or the end of
  the stream finalises the utterance at once: a *final* decode when audio is undecoded or
  the last pause pass may have lost words (it dropped words the pass before it heard, or
  its words stop short of the voiced audio), then ``TranscriptFinal(is_last=True)``; a
  final decode that finds nothing new keeps the words the last pass heard.
- One job at a time: when compute falls behind, partial decodes coalesce (the next job
  takes everything that arrived); audio is never dropped and finals are never skipped.
  When the shared model is saturated (``poll(saturated=True)``) a partial waits until
  ``busy_tick_s`` of audio is undecoded (or the model frees up) instead of queueing.
- The window is trimmed at committed words (pauses, or past ``max_window_s``), so encoding
  stays cheap; committed text of the session is the prompt of the next decode.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from streamkit.asr.config import AsrConfig, AsrOutput, DecodeJob, JobKind
from streamkit.asr.hypothesis import HypothesisBuffer, drop_loops, join_words
from streamkit.asr.vad import WINDOW, VadConfig, VadSegmenter
from streamkit.asr.whisper import DecodeResult
from streamkit.asr.window import RATE, Utterance, to_words, trim
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.events import (
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
    TranscriptPartial,
    Word,
)

__all__ = ["AsrConfig", "AsrCore", "AsrOutput", "DecodeJob", "JobKind", "drop_loops"]


class AsrCore:
    """Streaming ASR policy for one audio stream (see the module docstring).

    Args:
        config: settings.
        vad_probs: window probabilities for new samples (e.g. ``SileroVad().probs``).
        prefix: utterance ids are ``f"{prefix}-{n}"`` (deterministic across replays).
    """

    def __init__(
        self,
        config: AsrConfig,
        vad_probs: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
        prefix: str = "utt",
    ) -> None:
        self.config = config
        self._vad_probs = vad_probs
        self._segmenter = VadSegmenter(config.vad)
        self._prefix = prefix
        self._count = 0
        self._base_pts: Nanos | None = None  # pts of stream sample 0 (after resyncs)
        self._n = 0  # samples pushed
        self._history = np.zeros(0, dtype=np.float32)
        self._history_keep = int((max(config.preroll_s, config.left_context_s) + 1.0) * RATE)
        self._prior: list[Word] = []  # last committed words of the session (dedupe context)
        self._said: deque[Word] = deque(maxlen=100)  # committed words, for the prompt
        self._active: Utterance | None = None
        self._ended: deque[Utterance] = deque()
        self._busy: DecodeJob | None = None
        self._vad_pos = 0
        self._voiced_end = 0  # stream sample where the last utterance's speech ended

    # -- time mapping --------------------------------------------------------------------

    def pts_of(self, sample: int) -> Nanos:
        """Shared-clock time of stream sample index ``sample`` (ns)."""
        base = self._base_pts or 0
        return base + sample * NS_PER_S // RATE

    def _sample_of(self, t: Nanos) -> int:
        return (t - (self._base_pts or 0)) * RATE // NS_PER_S

    @property
    def position(self) -> Nanos:
        """Shared-clock end of the audio pushed so far (ns)."""
        return self.pts_of(self._n)

    def lag_ns(self) -> Nanos:
        """How far decoding is behind the audio received (ns; 0 when idle or no speech)."""
        pending: list[int] = []
        if self._busy is not None:
            pending.append(self._busy.end_sample)
        for utt in [*self._ended, self._active]:
            if utt is not None and utt.last_voiced > utt.decoded_upto:
                pending.append(utt.decoded_upto)
        if not pending:
            return 0
        return max(0, (self._n - min(pending)) * NS_PER_S // RATE)

    @property
    def active_uid(self) -> str | None:
        """The utterance in progress (the one a commit would finalise), or None."""
        return self._active.uid if self._active is not None else None

    def set_vad(self, vad: VadConfig) -> bool:
        """Segment with ``vad`` from the next window on; False (unchanged) while in speech."""
        if self._segmenter.in_speech:
            return False
        position = self._segmenter.position
        self.config = replace(self.config, vad=vad)
        self._segmenter = VadSegmenter(vad)
        self._segmenter.position = position
        return True

    @property
    def idle(self) -> bool:
        """True when nothing is pending: no job running, no utterance open or ending."""
        return self._busy is None and self._active is None and not self._ended

    def heard(self, uid: str) -> str:
        """What utterance ``uid`` has been heard saying so far: its committed words and the
        last pass's tail ("" once it is finalised, or for an unknown id)."""
        utt = self._utterance(uid)
        if utt is None:
            return ""
        return join_words([*utt.hyp.committed, *utt.hyp.tail])

    def speech_state(self) -> tuple[str, Nanos, Nanos | None, Nanos] | None:
        """The open utterance as the VAD sees it now, for the end-of-turn policy:
        ``(id, speech start, silence start or None while voiced, audio time the VAD
        reached)`` in shared-clock ns; None when no utterance is open."""
        utt = self._active
        if utt is None:
            return None
        silence = self._segmenter.silence_start
        return (
            utt.uid,
            self.pts_of(utt.start_sample),
            None if silence is None else self.pts_of(silence),
            self.pts_of(self._segmenter.position),
        )

    # -- input ---------------------------------------------------------------------------

    def push(self, samples: npt.NDArray[np.float32], pts: Nanos) -> list[AsrOutput]:
        """Add contiguous 16 kHz mono audio whose first sample is at ``pts`` (ns)."""
        out: list[AsrOutput] = []
        if self._base_pts is None:
            self._base_pts = pts
        expected = self.position
        if pts > expected + NS_PER_MS:
            hole = pts - expected
            if hole <= round(self.config.max_gap_s * NS_PER_S):
                out += self._append(np.zeros(hole * RATE // NS_PER_S, dtype=np.float32))
            else:
                out += self._end_active(self._n)
                self._resync(pts)
        elif pts < expected - NS_PER_MS:
            self._resync(pts)
        out += self._append(np.asarray(samples, dtype=np.float32))
        return out

    def gap(self, start: Nanos, end: Nanos) -> list[AsrOutput]:
        """Audio from ``start`` to ``end`` will never come: silence, or an utterance end."""
        if self._base_pts is None:
            return []
        if end - start <= round(self.config.max_gap_s * NS_PER_S):
            return self._append(
                np.zeros(max(0, end - self.position) * RATE // NS_PER_S, np.float32)
            )
        out = self._end_active(self._n)
        self._resync(end)
        return out

    def commit(self) -> list[AsrOutput]:
        """Force-finalise the current utterance now (the client's ``input.commit``)."""
        out = self._end_active(self._n)
        self._segmenter.force_end()
        return out

    def finish(self) -> list[AsrOutput]:
        """End of stream: finalise the current utterance."""
        return self._end_active(self._n)

    def _resync(self, pts: Nanos) -> None:
        self._base_pts = pts - self._n * NS_PER_S // RATE

    def _append(self, samples: npt.NDArray[np.float32]) -> list[AsrOutput]:
        if len(samples) == 0:
            return []
        out: list[AsrOutput] = []
        self._history = np.concatenate([self._history, samples])[-self._history_keep :]
        self._n += len(samples)
        if self._active is not None:
            self._active.buf = np.concatenate([self._active.buf, samples])
        probs = self._vad_probs(samples)
        cfg = self.config.vad
        for index, prob in enumerate(probs.tolist()):
            window_start = self._vad_pos + index * WINDOW
            events = self._segmenter.push(np.array([prob], dtype=np.float32))
            for event in events:
                if event.kind == "start":
                    out += self._start(event.sample)
                elif self._active is None:
                    continue
                elif event.kind == "pause":
                    self._active.pause_at = window_start + WINDOW
                    self._active.silence_start = event.sample
                elif event.kind == "end":
                    out += self._end_active(event.sample)
            active = self._active
            seg = self._segmenter
            if (
                active is not None
                and prob >= cfg.neg_threshold
                and seg.in_speech
                and seg.silence_start is None
            ):
                active.last_voiced = window_start + WINDOW
                active.settled = False
        self._vad_pos += len(probs) * WINDOW
        return out

    def _start(self, sample: int) -> list[AsrOutput]:
        self._count += 1
        uid = f"{self._prefix}-{self._count}"
        history_start = self._n - len(self._history)
        begin = max(history_start, sample - int(self.config.preroll_s * RATE))
        # Left context: start at the end of an already committed word (whole words only),
        # at most ``utterance_context_s`` back; none: not before the last utterance's speech
        # ended (its words are only in the prompt then, never heard twice).
        context = self.config.utterance_context_s
        floor = max(history_start, sample - int(context * RATE))
        if context <= 0:
            begin = max(begin, min(sample, self._voiced_end))
        ends = [self._sample_of(w.end) for w in self._prior]
        fits = [e for e in ends if floor <= e < begin]
        if fits:
            begin = min(fits)
        utt = Utterance(
            uid=uid,
            start_sample=sample,
            buf_start=begin,
            buf=self._history[begin - history_start :].copy(),
            hyp=HypothesisBuffer(prior=self._prior),
            decoded_upto=begin,
            last_voiced=sample + WINDOW,
        )
        self._active = utt
        t = self.pts_of(sample)
        return [AsrOutput("speech", t, SpeechStarted(uid, t), uid)]

    def _end_active(self, sample: int) -> list[AsrOutput]:
        utt = self._active
        if utt is None:
            return []
        self._active = None
        utt.ended = True
        utt.voiced_end = min(sample, utt.last_voiced) if sample >= utt.start_sample else sample
        self._voiced_end = max(self._voiced_end, utt.voiced_end)
        self._ended.append(utt)
        t = self.pts_of(utt.voiced_end)
        return [AsrOutput("speech", t, SpeechStopped(utt.uid, t), utt.uid)]

    # -- decoding ------------------------------------------------------------------------

    def poll(self, saturated: bool = False) -> tuple[list[AsrOutput], DecodeJob | None]:
        """Events ready now and the next decode to run (None while one runs or none due).

        ``saturated``: the shared model has no free worker now (a call would queue); partial
        decodes then need ``busy_tick_s`` of new audio instead of ``tick_s``.
        """
        out: list[AsrOutput] = []
        if self._busy is not None:
            return out, None
        while self._ended:
            ended = self._ended[0]
            if not ended.settled:
                return out, self._job(ended, "final", ended.buf_end)
            self._ended.popleft()
            out += self._finish(ended, ended.hyp.commit_tail())
        utt = self._active
        if utt is None:
            return out, None
        if utt.pause_at is not None:
            pause_at = utt.pause_at
            utt.pause_at = None
            if not utt.settled:
                return out, self._job(utt, "pause", pause_at)
        new_audio = utt.buf_end - utt.decoded_upto
        tick = self.config.tick_s
        if saturated and self.config.busy_tick_s is not None:
            tick = max(tick, self.config.busy_tick_s)
        if (
            self.config.partials
            and self._segmenter.in_speech
            and self._segmenter.silence_start is None
            and new_audio >= tick * RATE
        ):
            return out, self._job(utt, "partial", utt.buf_end)
        return out, None

    def _job(self, utt: Utterance, kind: JobKind, end_sample: int) -> DecodeJob:
        end_sample = max(utt.buf_start, min(end_sample, utt.buf_end))
        audio = utt.buf[: end_sample - utt.buf_start].copy()
        # The prompt holds only text said *before* the window: Whisper would otherwise
        # continue after a prompt that covers the window's start and skip those words.
        start_ns = self.pts_of(utt.buf_start) + 50 * NS_PER_MS
        prompt = join_words([w for w in self._said if w.end <= start_ns])
        prompt = prompt[-self.config.context_chars :]
        options = self.config.decode
        beam = {"pause": self.config.pause_beam_size, "final": self.config.final_beam_size}
        if beam.get(kind, options.beam_size) != options.beam_size:
            options = replace(options, beam_size=beam[kind])
        job = DecodeJob(
            uid=utt.uid,
            kind=kind,
            audio=audio,
            start=self.pts_of(utt.buf_start),
            end=self.pts_of(end_sample),
            prompt=prompt,
            options=options,
            end_sample=end_sample,
        )
        utt.decoded_upto = max(utt.decoded_upto, end_sample)
        self._busy = job
        return job

    def _utterance(self, uid: str) -> Utterance | None:
        for utt in [*self._ended, self._active]:
            if utt is not None and utt.uid == uid:
                return utt
        return None

    def complete(self, job: DecodeJob, result: DecodeResult) -> list[AsrOutput]:
        """Apply a finished decode of ``job``; return the events it yields."""
        self._busy = None
        utt = self._utterance(job.uid)
        if utt is None:
            return []
        words = to_words(job, result, self.pts_of(utt.last_voiced))
        out: list[AsrOutput] = []
        if job.kind == "partial":
            done = utt.hyp.update(words, job.end, self.config.commit)
            if len(utt.buf) > 2 * self.config.max_window_s * RATE:
                done += utt.hyp.commit_tail()  # no agreement for too long: take this pass
            out += self._final(utt, done, job.end, last=False)
            out.append(self._partial(utt, job.end))
            trim(utt, self.config, self._sample_of)
        elif job.kind == "pause":
            done = utt.hyp.update(words, job.end, self.config.commit, settled=True)
            out += self._final(utt, done, job.end, last=False)
            # the pause pass's tail too: a speculative answer then starts on exactly the
            # words the end of the turn will commit (the tail, when nothing decodes again)
            out.append(self._partial(utt, job.end))
            utt.settled = utt.last_voiced <= job.end_sample and self._covers(utt)
            trim(utt, self.config, self._sample_of)
        else:
            heard = list(utt.hyp.tail)
            done = utt.hyp.commit_all(words)
            if not done and heard:
                # The final pass found nothing new (rejected as no speech, or it re-heard
                # only committed words) where the previous pass heard words: keep those.
                done = utt.hyp.commit_words(heard)
            if utt in self._ended:
                self._ended.remove(utt)
            out += self._finish(utt, done)
        return out

    def _partial(self, utt: Utterance, pts: Nanos) -> AsrOutput:
        tail = utt.hyp.tail
        partial = TranscriptPartial(utt.uid, join_words(tail), list(tail), utt.hyp.committed_text)
        return AsrOutput("transcript", pts, partial, utt.uid)

    def _covers(self, utt: Utterance) -> bool:
        """Whether a pause pass may settle the utterance: it kept every word the pass before
        it heard (nothing of that pass is left uncommitted and unmatched), and its words
        reach the last voiced audio within ``final_cover_s``. Else the end of speech decodes
        again: a pause pass that lost its last words to a hallucinated repeat ended
        utterances with an empty final ("What is the largest ocean on Earth?" → "What is
        the", "largest", "")."""
        if utt.hyp.older_tail:
            return False
        ends = [w.end for w in utt.hyp.committed + utt.hyp.tail]
        if not ends:
            return False  # a pass that heard nothing: the final pass decides
        gap = self.pts_of(utt.last_voiced) - max(ends)
        return gap <= round(self.config.final_cover_s * NS_PER_S)

    def _final(self, utt: Utterance, words: list[Word], pts: Nanos, last: bool) -> list[AsrOutput]:
        if not words and not last:
            return []
        utt.finals += 1
        if words:
            # A window that starts with left context stretches its first word back over it
            # ("2." from 0.34 s, its speech started at 1.16 s): no word of this utterance
            # starts before its speech did (less the pre-roll the window adds).
            floor = self.pts_of(utt.start_sample) - round(self.config.preroll_s * NS_PER_S)
            words = [
                w if w.start >= floor else Word(w.text, min(floor, w.end), w.end, w.probability)
                for w in words
            ]
            self._prior = (self._prior + words)[-5:]
            self._said.extend(words)
            for other in [*self._ended, self._active]:
                if other is not None and other is not utt and not other.hyp.committed:
                    other.hyp.set_prior(self._prior)
            start, end = words[0].start, words[-1].end
            pts = end
        else:
            start = self.pts_of(utt.start_sample)
            end = self.pts_of(utt.voiced_end if utt.voiced_end is not None else utt.buf_end)
            pts = end
        final = TranscriptFinal(utt.uid, join_words(words), list(words), start, end, last)
        return [AsrOutput("transcript", pts, final, utt.uid)]

    def _finish(self, utt: Utterance, words: list[Word]) -> list[AsrOutput]:
        return self._final(utt, words, utt.buf_end, last=True)
