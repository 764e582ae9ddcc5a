"""When is the user's turn over? A pure decision core (sans-I/O, sans-clock).

:class:`TurnCore` follows one audio stream's open utterance. Its caller (the ASR stage) tells
it, after each piece of audio, what the VAD sees — :meth:`TurnCore.update` with the audio
time reached (``now``, ns on the shared clock), the utterance id, its speech start and the
start of the current silence (None while voiced) — and hands it the end-of-turn model's
answers (:meth:`TurnCore.result`). It returns actions, never calls the model, never reads a
clock:

- :class:`Speculate` — the speaker paused (``pause_ns`` of silence): the turn *may* be over;
  the responder may start the language model on the words so far, releasing nothing yet;
- :class:`Resume` — speech again after that pause: the turn goes on (drop the speculation);
- :class:`Predict` — run the end-of-turn model on the audio ``start``..``end`` (``smart``);
- :class:`EndTurn` — the turn is over: finalise the utterance now.

Policies (``TurnConfig.detection``):

- ``vad`` (the rule before Smart Turn): the turn ends after ``hangover_ns`` of silence.
- ``smart``: at ``pause_ns`` of silence the model is asked; P(complete) ≥ ``threshold`` ends
  the turn at once; otherwise it is asked again every ``repredict_ns`` of further silence,
  and ``max_silence_ns`` of silence ends the turn whatever it says. A model answer that
  arrives after speech resumed is stale and ignored (each :class:`Predict` has an ``id``).
  The words heard up to the pause count too (:meth:`TurnCore.heard`, from the ASR's pause
  decode): when they end with a question mark, ``question_silence_ns`` of silence ends the
  turn (Smart Turn hears what the voice does, and a flat voice's question sounds unfinished);
  when they end a sentence (a full stop or "!" after two words or more),
  ``statement_silence_ns`` does (read speech ends on a falling voice the model often takes
  for a pause: P(complete) 0.02-0.25 after the true end of six of 29 reference turns); when
  they stop mid-phrase (a last word with no closing punctuation, or a trailing ellipsis or
  dash: :func:`words_cue`), the model's "complete" is not taken and
  ``unfinished_silence_ns`` of silence ends the turn instead of ``max_silence_ns`` (a
  speaker who stops after "and so my fellow" to think sounds finished to the model; Whisper
  writes no full stop there). A "complete" that comes before the pause's words ends the turn
  unless ``words_wait_ns`` says to wait for them.

Times are audio times: a turn is decided when enough audio has *arrived*, so a decision
is never later than the audio that proves it, on a live or a virtual clock alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos

__all__ = [
    "EndReason",
    "EndTurn",
    "Predict",
    "Resume",
    "Speculate",
    "TurnAction",
    "TurnConfig",
    "TurnCore",
    "TurnDetection",
    "WordsCue",
    "words_cue",
]

TurnDetection = Literal["vad", "smart"]
EndReason = Literal["model", "silence", "question", "statement"]
WordsCue = Literal["question", "statement", "unfinished", ""]

_OPEN_ENDINGS = ("...", "…", "-", "—", "–")


def words_cue(text: str) -> WordsCue:
    """What the words heard up to a pause say about the turn: ``question`` (they end with a
    question mark), ``statement`` (they end a sentence: a full stop or an exclamation mark
    after two words or more — Whisper puts a full stop after a lone word or number it hears
    cut off, "1." of a count), ``unfinished`` (they stop mid-phrase: the last word is letters
    with no closing punctuation, or trails off in an ellipsis or a dash), else ``""``
    (nothing to say: a lone word's full stop, a comma, a number, or no words). A comma is
    not taken as unfinished: read speech and lists end on one as often as they pause on one.
    Nor is a bare number: a counted list heard whole ("1 2, 3", ``bench/turns.py`` part 2)
    had no full stop."""
    text = text.rstrip()
    if not text:
        return ""
    if text.endswith("?"):
        return "question"
    if text.endswith((".", "!")) and not text.endswith(_OPEN_ENDINGS) and " " in text:
        return "statement"
    if text.endswith(_OPEN_ENDINGS) or text[-1].isalpha() or text[-1] == "'":
        return "unfinished"
    return ""


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """End-of-turn policy and thresholds (durations in ns; the CLI and wire take ms).

    The defaults ask at 128 ms of silence, end at P(complete) ≥ 0.95, else after 400 ms when
    the words end a sentence, else after 800 ms. ``bench/turns.py`` chooses 128 ms and 0.95
    on all 29 reference turns from 11 sources (end-of-turn p50 within 250 ms, then the fewest
    false splits; the grid's pauses are 96, 128 and 160 ms) with no sentence rule, which keeps
    one more turn whole (jfk.wav, see ``statement_silence_ns``) at the cost of a p90 of 800
    ms. Against the former defaults (96 ms, 0.9, the choice before Smart Turn got faster),
    with the sentence rule both: false splits 3 of 29 instead of 6, end of turn p50 184 ms
    instead of 152 in simulation; on the whole assistant (part 2) end of speech → first
    token p50 312 ms instead of 288 (p90 464 / 460); live, on ``bench/voice.py``'s real
    questions, v2v p50 560 ms instead of 510 (end of turn 279 / 212 ms: real questions often
    score 0.9-0.95; 160 ms and 0.95 had doubled it, 258 → 501). The ASR's pause decode runs
    at 96 ms either way (``asr/turn.py:PAUSE_DECODE_NS``).

    Attributes:
        detection: ``vad``, ``smart``, or ``auto`` (``smart`` when the Smart Turn model is
            present, else ``vad`` with a warning).
        pause_ns: silence that marks a pause: speculation starts, ``smart`` asks the model.
        threshold: ``smart`` ends the turn when P(complete) ≥ this.
        repredict_ns: while the model says "incomplete", ask again after this much more
            silence (0: once per pause).
        max_silence_ns: ``smart`` ends the turn after this much silence regardless.
        question_silence_ns: ``smart`` ends the turn after this much silence when the words
            heard up to the pause end with a question mark (0: off). 300 ms: past the ~200 ms
            people leave between turns, under the model's 800 ms backstop.
        statement_silence_ns: the same when the words end a sentence (:func:`words_cue`'s
            ``statement``; 0: off). 400 ms: of the 9 reference turns of
            ``bench/turns.py`` that waited the whole 800 ms (Smart Turn hears a read voice
            fall as a pause: P(complete) 0.02-0.25 after six of them), 8 end on a full stop;
            with it the end of turn p90 goes 800 → 416 ms (end of speech → first token p90
            795 → 464 ms in part 2, at 128 ms and 0.95; at 96 ms and 0.9 it added no false
            split). 300-600 ms split the same turns. Its cost is a sentence followed, inside
            the turn, by a longer pause the model hears as unfinished (jfk.wav, "…can do for
            you.", ~650 ms): the bench's chosen setting keeps that one inside the turn, so it
            chooses this off; the defaults keep it (a split in 29 turns for a p90 half as long).
        unfinished_silence_ns: ``smart`` ends the turn after this much silence (never
            sooner than ``max_silence_ns``), and not on the model's word, when the words
            heard up to the pause stop mid-phrase (0: off).
            2 s: inside LiveKit's dynamic endpointing (0.5-3 s, its longest wait when its text
            model says the sentence goes on); a thinking pause after "and so my fellow" lasts
            over a second (jfk.wav: 1.1 s, twice), past ``max_silence_ns``.
        words_wait_ns: with ``unfinished_silence_ns`` on, a model "complete" that comes
            before the pause's words (the ASR's pause decode) waits up to this long for them
            (0, the default: it does not wait, and the words count only when they come
            first). 150 ms (a pause decode's CPU time, p50 ~120 ms) halved the shipped
            defaults' false splits in ``bench/turns.py`` (0.207 → 0.103) and left end of
            speech → first token as it was (354 vs 365 ms: the final needs those words
            anyway), but the declared end of turn moved from 152 to 256 ms p50, past the
            250 ms goal.
        hangover_ns: ``vad`` ends the turn after this much silence.
        pre_speech_ns: audio before the speech start that the model sees (as in training).
        speculate: emit :class:`Speculate` / :class:`Resume` at pauses.
    """

    detection: TurnDetection | Literal["auto"] = "auto"
    pause_ns: Nanos = 128 * NS_PER_MS
    threshold: float = 0.95
    repredict_ns: Nanos = 160 * NS_PER_MS
    max_silence_ns: Nanos = 800 * NS_PER_MS
    question_silence_ns: Nanos = 300 * NS_PER_MS
    statement_silence_ns: Nanos = 400 * NS_PER_MS
    unfinished_silence_ns: Nanos = 2000 * NS_PER_MS
    words_wait_ns: Nanos = 0
    hangover_ns: Nanos = 500 * NS_PER_MS
    pre_speech_ns: Nanos = 500 * NS_PER_MS
    speculate: bool = True

    def with_ms(
        self,
        threshold: float | None = None,
        *,
        pause_ms: int | None = None,
        max_silence_ms: int | None = None,
        question_silence_ms: int | None = None,
        statement_silence_ms: int | None = None,
        unfinished_silence_ms: int | None = None,
        words_wait_ms: int | None = None,
        hangover_ms: int | None = None,
    ) -> TurnConfig:
        """This config with the thresholds given in milliseconds, as the CLI and the wire
        take them (None keeps a field)."""

        def ns(ms: int | None, kept: Nanos) -> Nanos:
            return kept if ms is None else ms * NS_PER_MS

        return replace(
            self,
            threshold=self.threshold if threshold is None else threshold,
            pause_ns=ns(pause_ms, self.pause_ns),
            max_silence_ns=ns(max_silence_ms, self.max_silence_ns),
            question_silence_ns=ns(question_silence_ms, self.question_silence_ns),
            statement_silence_ns=ns(statement_silence_ms, self.statement_silence_ns),
            unfinished_silence_ns=ns(unfinished_silence_ms, self.unfinished_silence_ns),
            words_wait_ns=ns(words_wait_ms, self.words_wait_ns),
            hangover_ns=ns(hangover_ms, self.hangover_ns),
        )

    @property
    def policy(self) -> TurnDetection:
        """The policy in force (``auto`` counts as ``smart``; resolve it before use)."""
        return "vad" if self.detection == "vad" else "smart"

    @property
    def max_wait_ns(self) -> Nanos:
        """The longest silence before this policy ends a turn."""
        if self.policy == "vad":
            return self.hangover_ns
        return max(self.max_silence_ns, self.unfinished_silence_ns)


@dataclass(frozen=True, slots=True)
class Speculate:
    """Utterance ``uid`` paused: silence since ``t`` (ns), declared at audio time ``at``."""

    uid: str
    t: Nanos
    at: Nanos


@dataclass(frozen=True, slots=True)
class Resume:
    """Utterance ``uid`` goes on: speech again at audio time ``at`` after the pause."""

    uid: str
    at: Nanos


@dataclass(frozen=True, slots=True)
class Predict:
    """Ask the model about utterance ``uid``'s audio from ``start`` to ``end`` (ns)."""

    id: int
    uid: str
    start: Nanos
    end: Nanos


@dataclass(frozen=True, slots=True)
class EndTurn:
    """Utterance ``uid`` is over; its speech ended at ``t`` (ns, the silence start).

    ``reason``: ``model`` (P(complete) = ``probability`` passed the threshold),
    ``silence`` (``hangover_ns`` / ``max_silence_ns`` of silence), ``question`` /
    ``statement`` (the words end a question / a sentence and ``question_silence_ns`` /
    ``statement_silence_ns`` passed). ``at``: the audio time of
    the decision (for a model answer: the end of the audio it was asked about)."""

    uid: str
    t: Nanos
    at: Nanos
    reason: EndReason
    probability: float | None = None


TurnAction = Speculate | Resume | Predict | EndTurn


class TurnCore:
    """The end-of-turn policy for one stream (see the module docstring)."""

    def __init__(self, config: TurnConfig | None = None) -> None:
        self.config = config or TurnConfig()
        self._uid: str | None = None
        self._speech_start: Nanos = 0
        self._silence: Nanos | None = None
        self._paused = False
        self._ended = False
        self._job: int | None = None  # id of the Predict whose answer is awaited
        self._next_predict: Nanos | None = None
        self._ids = 0
        self._cue: WordsCue = ""  # what the words heard up to this pause say
        self._heard = False  # the words of this pause arrived
        self._complete: tuple[Nanos, float] | None = None  # a "complete" awaiting the words
        self.last_probability: float | None = None

    def set_config(self, config: TurnConfig) -> None:
        """Switch policy or thresholds (from the next update on)."""
        self.config = config
        self._job = None
        self._complete = None
        if self._silence is not None:
            self._next_predict = self._silence + config.pause_ns

    @property
    def waiting(self) -> bool:
        """A model answer is awaited."""
        return self._job is not None

    def update(
        self, now: Nanos, uid: str | None, speech_start: Nanos, silence_start: Nanos | None
    ) -> list[TurnAction]:
        """The VAD's view at audio time ``now``: the open utterance ``uid`` (None: none is
        open) whose speech began at ``speech_start`` and is silent since ``silence_start``
        (None while voiced)."""
        cfg = self.config
        out: list[TurnAction] = []
        if uid != self._uid:
            self._reset(uid, speech_start)
        if uid is None or self._ended:
            return out
        if silence_start is None:
            if self._paused:
                out.append(Resume(uid, now))
            self._silence = None
            self._paused = False
            self._forget_words()
            self._job = None
            self._next_predict = None
            return out
        if silence_start != self._silence:
            self._silence = silence_start
            self._paused = False
            self._forget_words()
            self._job = None
            self._next_predict = silence_start + cfg.pause_ns
        silent = now - silence_start
        if silent >= self._longest_wait():
            return [*out, self._end(now, "silence", self.last_probability)]
        if self._complete is not None and now - self._complete[0] >= cfg.words_wait_ns:
            return [*out, self._end(now, "model", self._complete[1])]  # no words came
        said = self._said(silent)
        if said is not None:
            return [*out, self._end(now, said, self.last_probability)]
        if silent >= cfg.pause_ns and not self._paused:
            self._paused = True
            if cfg.speculate:
                out.append(Speculate(uid, silence_start, now))
        due = self._next_predict
        asking = cfg.policy == "smart" and not self._unfinished()
        if asking and self._job is None and due is not None and now >= due:
            self._ids += 1
            self._job = self._ids
            self._next_predict = now + cfg.repredict_ns if cfg.repredict_ns > 0 else None
            start = max(speech_start - cfg.pre_speech_ns, now - 8 * NS_PER_S)
            out.append(Predict(self._ids, uid, start, now))
        return out

    def result(self, job: Predict, probability: float) -> list[TurnAction]:
        """The model's P(complete) for ``job``; stale answers (speech resumed, another
        utterance, policy switched) return nothing."""
        if job.id != self._job or job.uid != self._uid or self._ended:
            return []
        self._job = None
        self.last_probability = probability
        cfg = self.config
        if cfg.policy != "smart" or probability < cfg.threshold or self._unfinished():
            return []
        if self._heard or cfg.unfinished_silence_ns <= 0 or cfg.words_wait_ns <= 0:
            return [self._end(job.end, "model", probability)]
        self._complete = (job.end, probability)  # the words decide (see heard)
        return []

    def heard(self, uid: str, text: str, until: Nanos, now: Nanos) -> list[TurnAction]:
        """The words of utterance ``uid`` heard up to audio time ``until`` (the ASR's pause
        decode), at audio time ``now``. Words that reach the current pause count in the
        decision (:func:`words_cue`): a question ends the turn after ``question_silence_ns``
        of silence (at once, if that much has passed); unfinished words hold it until
        ``unfinished_silence_ns``. Words of an earlier pause, or another utterance, are
        ignored."""
        silence = self._silence
        if uid != self._uid or self._ended or silence is None or until < silence:
            return []
        self._cue, self._heard = words_cue(text), True
        complete, self._complete = self._complete, None
        said = self._said(now - silence)
        if said is not None:
            return [self._end(now, said, self.last_probability)]
        if complete is not None and not self._unfinished():
            return [self._end(now, "model", complete[1])]
        return []

    def _forget_words(self) -> None:
        self._cue, self._heard, self._complete = "", False, None

    def _said(self, silent: Nanos) -> Literal["question", "statement"] | None:
        """The words heard end a question or a statement and have had its silence
        (``smart`` only): the reason to end the turn, else None."""
        cfg = self.config
        if cfg.policy != "smart":
            return None
        if self._cue == "question":
            wait = cfg.question_silence_ns
        elif self._cue == "statement":
            wait = cfg.statement_silence_ns
        else:
            return None
        return self._cue if 0 < wait <= silent else None

    def _unfinished(self) -> bool:
        """Unfinished words were heard at this pause and the policy holds for them."""
        cfg = self.config
        return self._cue == "unfinished" and cfg.policy == "smart" and cfg.unfinished_silence_ns > 0

    def _longest_wait(self) -> Nanos:
        """The silence that ends the turn at this pause whatever the model says."""
        cfg = self.config
        if cfg.policy == "vad":
            return cfg.hangover_ns
        if self._unfinished():  # a hold never shortens the wait
            return max(cfg.unfinished_silence_ns, cfg.max_silence_ns)
        return cfg.max_silence_ns

    def _end(self, now: Nanos, reason: EndReason, p: float | None) -> EndTurn:
        assert self._uid is not None
        assert self._silence is not None
        self._ended = True
        self._job = None
        return EndTurn(self._uid, self._silence, now, reason, p)

    def _reset(self, uid: str | None, speech_start: Nanos) -> None:
        self._uid = uid
        self._speech_start = speech_start
        self._silence = None
        self._paused = False
        self._ended = False
        self._job = None
        self._next_predict = None
        self._forget_words()
        self.last_probability = None
