"""LocalAgreement: commit the words that successive hypotheses agree on (pure, sans-I/O).

Whisper re-transcribes a growing window of audio; each pass gives a *hypothesis* (words with
shared-clock times). A word is committed once enough successive hypotheses agree on it and
on everything before it (LocalAgreement, as in whisper_streaming; how many depends on the
word, see :class:`CommitPolicy`); the rest is the unstable tail shown as a partial. At the
end of an utterance the caller commits a whole hypothesis at once
(:meth:`HypothesisBuffer.commit_all`).

The decoded window may start before the last committed word (left context helps Whisper), so
re-heard words are removed from each new hypothesis: by text first (the committed tail, up to
``max_ngram`` words, found in the hypothesis near its committed time), else by time (words
whose midpoint is before the committed end). ``prior`` seeds the committed tail with the
previous utterance's last words, whose audio may be in a new utterance's window.

Words compare by :func:`norm_word` (case and punctuation ignored). All times are ns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from streamkit.asr.textnorm import normalize
from streamkit.asr.whisper import DecodedWord
from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.events import Word

__all__ = ["CommitPolicy", "HypothesisBuffer", "drop_loops", "join_words", "norm_word"]

_STRIP = re.compile(r"[^\w']+")


@lru_cache(maxsize=4096)
def norm_word(text: str) -> str:
    """Comparison key of a word: lower case, punctuation stripped, a number spelled out
    ("2" and "two", "10" and "ten", "1st" and "first" agree: tiny.en flips between digits
    and words from one pass to the next, so digit runs never agreed and lost digits)."""
    key = _STRIP.sub("", text.lower())
    if any(c.isdigit() for c in key):
        key = normalize(key).replace(" ", "")
    return key


def join_words(words: Sequence[Word]) -> str:
    """Text of ``words`` joined by single spaces."""
    return " ".join(w.text for w in words)


@dataclass(frozen=True)
class CommitPolicy:
    """How many successive hypotheses must agree on a word before it is committed.

    Probabilities are Whisper's word probabilities (0–1); margins are seconds before the
    end of the decoded audio. A word needs LocalAgreement-2 (the previous hypothesis said it
    too, and everything before it), except:

    - *uncertain* (probability < ``min_probability``): ``uncertain_agreement`` hypotheses
      (3: one more pass with more audio after it; None: it waits for the end of speech) —
      tiny.en flips such words as audio arrives ("Unless" → "I'd less" → "Unless");
    - *confident* (≥ ``confident_probability``, ending ``confident_margin_s`` or more before
      the end): one hypothesis (None: never) — keeps the median commit latency low;
    - at a *pause* (the audio after the hypothesis is silence): ``pause_agreement``
      hypotheses — the last words before a pause were heard with no right context
      ("desire and crease." at a comma; the next pass, with speech after it, says
      "increase"), so 2 waits for one pass that has it; 1 commits them at once.

    No word ending within ``margin_s`` of the end is committed by agreement (not at a pause).
    """

    margin_s: float = 0.0
    min_probability: float = 0.5
    uncertain_agreement: int | None = 3
    confident_probability: float | None = 0.95
    confident_margin_s: float = 0.3
    pause_agreement: int = 2

    def agreement_needed(self, word: Word, confident_horizon: Nanos, settled: bool) -> int:
        """Hypotheses that must agree on ``word`` (a large number: never by agreement)."""
        never = 1_000
        if word.probability < self.min_probability:
            return self.uncertain_agreement or never
        if settled:
            return self.pause_agreement
        confident = self.confident_probability
        if confident is not None and word.probability >= confident and (
            word.end <= confident_horizon
        ):
            return 1
        return 2


class HypothesisBuffer:
    """Committed words and the last unstable tail of one utterance.

    Args:
        prior: last committed words before this utterance (context only, never re-emitted).
        max_ngram: longest committed tail matched by text.
        match_window: how far (ns) a text match may be from the committed end.
    """

    def __init__(
        self,
        prior: Sequence[Word] = (),
        max_ngram: int = 5,
        match_window: Nanos = 1_000 * NS_PER_MS,
    ) -> None:
        self.max_ngram = max_ngram
        self.match_window = match_window
        self.prior: list[Word] = list(prior)[-max_ngram:]
        self.committed: list[Word] = []
        self.committed_end: Nanos | None = max((w.end for w in self.prior), default=None)
        self.tail: list[Word] = []
        self.older_tail: list[Word] = []  # the hypothesis before ``tail`` (uncommitted part)

    def set_prior(self, prior: Sequence[Word]) -> None:
        """Replace the context words (the previous utterance finished after this one began)."""
        self.prior = list(prior)[-self.max_ngram :]
        ends = [w.end for w in self.prior + self.committed]
        self.committed_end = max(ends) if ends else None

    def _clean(self, words: Sequence[Word]) -> list[Word]:
        """Drop the words of ``words`` that were already committed (re-heard context)."""
        fresh = [w for w in words if norm_word(w.text)]
        ref = (self.prior + self.committed)[-self.max_ngram :]
        if not ref or self.committed_end is None or not fresh:
            return fresh
        ref_keys = [norm_word(w.text) for w in ref]
        keys = [norm_word(w.text) for w in fresh]
        last_end = ref[-1].end
        for n in range(len(ref_keys), 0, -1):
            window = self.match_window if n > 1 else self.match_window // 2
            best: int | None = None
            best_dist = window
            for i in range(n, len(fresh) + 1):
                dist = abs(fresh[i - 1].end - last_end)
                if dist < best_dist and keys[i - n : i] == ref_keys[-n:]:
                    best, best_dist = i, dist
            if best is not None:
                return fresh[best:]
        cut = self.committed_end
        return [w for w in fresh if (w.start + w.end) // 2 > cut]

    def _commit(self, words: Sequence[Word]) -> list[Word]:
        done = list(words)
        if done:
            self.committed.extend(done)
            end = max(w.end for w in done)
            self.committed_end = end if self.committed_end is None else max(end, self.committed_end)
        return done

    def update(
        self,
        words: Sequence[Word],
        decoded_end: Nanos,
        policy: CommitPolicy | None = None,
        settled: bool = False,
    ) -> list[Word]:
        """Insert a new hypothesis of audio decoded up to ``decoded_end``; return the newly
        committed words (the prefix that ``policy`` accepts, see :class:`CommitPolicy`).

        ``settled``: the audio after the hypothesis is silence (a pause): no word is held back
        for being near the end, and a sure word needs ``policy.pause_agreement`` passes.
        """
        policy = policy or CommitPolicy()
        horizon = decoded_end - round(policy.margin_s * NS_PER_S)
        confident_horizon = decoded_end - round(policy.confident_margin_s * NS_PER_S)
        fresh = self._clean(words)
        previous_words = self._clean(self.tail)
        previous = [norm_word(w.text) for w in previous_words]
        older = [norm_word(w.text) for w in self._clean(self.older_tail)]
        agreed = 0
        for index, new in enumerate(fresh):
            if new.end > horizon and not settled:
                break
            key = norm_word(new.text)
            agrees_previous = index < len(previous) and previous[index] == key
            agrees_older = agrees_previous and index < len(older) and older[index] == key
            votes = 1 + int(agrees_previous) + int(agrees_older)
            if votes < policy.agreement_needed(new, confident_horizon, settled):
                break
            agreed += 1
        done = self._commit(fresh[:agreed])
        self.older_tail = previous_words[agreed:]
        self.tail = fresh[agreed:]
        return done

    def commit_all(self, words: Sequence[Word]) -> list[Word]:
        """Commit a whole hypothesis (at a pause or the end of speech); return what is new."""
        done = self._commit(self._clean(words))
        self.tail = []
        self.older_tail = []
        return done

    def commit_words(self, words: Sequence[Word]) -> list[Word]:
        """Commit ``words`` (already cleaned: a tail this buffer produced) as they are."""
        done = self._commit(words)
        self.tail = []
        self.older_tail = []
        return done

    def commit_tail(self) -> list[Word]:
        """Commit the current tail as is (forced finalisation without a new decode)."""
        done = self._commit(self.tail)
        self.tail = []
        self.older_tail = []
        return done

    @property
    def committed_text(self) -> str:
        return join_words(self.committed)


def _drop_squeezed_repeat(words: list[DecodedWord]) -> list[DecodedWord]:
    """Drop a copy of the last phrase that ends the hypothesis squeezed into (almost) no
    audio: "Ask not! Ask not!" with the second copy 60 ms long (Whisper looping in the
    window's padding). A phrase said twice takes about as long the second time."""
    keys = [norm_word(w.text) for w in words]
    total = len(words)
    for n in range(1, total // 2 + 1):
        first, copy = words[total - 2 * n : total - n], words[total - n :]
        if keys[total - 2 * n : total - n] != keys[total - n :]:
            continue
        said = first[-1].end - first[0].start
        squeezed = copy[-1].end - copy[0].start
        if squeezed <= 0.04 * n or (n >= 2 and squeezed < 0.5 * said):
            return words[: total - n]
    return words


def drop_loops(words: Sequence[DecodedWord], min_phrase: int = 3) -> list[DecodedWord]:
    """Cut a hallucinated repeat: keep the first copy of a phrase of ≥ ``min_phrase`` words
    repeated immediately, drop a last phrase repeated in (almost) no time at the end
    ("Ask not! Ask not!"), and drop a trailing pile of ≥ 2 zero-length words (heard past
    the speech: "…and crease. From fairest creatures we desire and crease")."""
    keys = [norm_word(w.text) for w in words]
    cut = len(words)
    for i in range(len(words)):
        for n in range(min_phrase, (len(words) - i) // 2 + 1):
            if keys[i : i + n] == keys[i + n : i + 2 * n]:
                cut = min(cut, i + n)
                break
        if cut < len(words):
            break
    kept = _drop_squeezed_repeat(list(words[:cut]))
    pile = 0
    while pile < len(kept) and kept[-1 - pile].end - kept[-1 - pile].start <= 0.0:
        pile += 1
    if pile >= 2:
        kept = kept[: len(kept) - pile]
    return kept
