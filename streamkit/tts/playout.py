"""The playout schedule of one spoken answer (pure: takes ``now``, reads no clock).

:class:`Playout` places audio frames on the shared clock and remembers which words each one
starts, so the TTS stage can (a) send every frame ``lead_ns`` ahead of its playout time,
(b) answer "what had the user heard at ``t``?" when the voice is cut.

- The first frame plays when it is ready; each next frame right after the previous one
  (``pts`` = previous end), or — when the voice fell behind — when it is ready (a gap).
- A frame is sent at ``max(ready, pts - lead_ns)``: at most ``lead_ns`` of audio sits in the
  client's buffer, which bounds what a client that cannot flush plays after a cancel.
- Words get estimated start times (characters spread evenly over their piece's audio; the
  engines give no word times) and ride on the frame where they start; :meth:`heard` is the
  words of frames whose playout had begun by ``t``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from streamkit.core.clock import Nanos

__all__ = ["Frame", "Playout", "split_words"]

_WORDS = re.compile(r"\s*\S+\s*|\s+")


def split_words(text: str) -> list[str]:
    """``text`` as words that keep their spacing (joined they give ``text`` back)."""
    return _WORDS.findall(text)


@dataclass(frozen=True, slots=True)
class Frame:
    """One placed frame: plays ``pts``..``pts + duration``, sent at ``send_at`` (ns)."""

    index: int
    pts: Nanos
    duration: Nanos
    send_at: Nanos
    text: str

    @property
    def end(self) -> Nanos:
        return self.pts + self.duration


@dataclass
class _Piece:
    words: list[str]
    starts: list[float]  # fraction of the piece's characters before each word
    next_word: int = 0


@dataclass
class Playout:
    """Schedule of one answer (see the module docstring). ``lead_ns`` ≥ 0."""

    lead_ns: Nanos
    frames: list[Frame] = field(default_factory=list)
    sent: int = 0
    """Frames the stage has actually sent (only those can have been heard)."""
    _cursor: Nanos | None = None
    _piece: _Piece | None = None
    _carry: str = ""

    def start_piece(self, text: str) -> None:
        """The text of the audio that the next frames carry (one chunker piece). A piece with
        no audio at all (markup only) is carried into the next frame."""
        if self._piece is not None:
            self._carry += "".join(self._piece.words[self._piece.next_word :])
        words = split_words(text)
        total = max(1, sum(len(w.strip()) for w in words))
        starts, seen = [], 0
        for w in words:
            starts.append(seen / total)
            seen += len(w.strip())
        self._piece = _Piece(words, starts)

    def place(self, duration: Nanos, ready: Nanos, progress: float) -> Frame:
        """Place the next frame (``duration`` ns, ready at ``ready``); ``progress`` is the
        fraction of the current piece's audio that ends with this frame (1.0 for its last)."""
        pts = ready if self._cursor is None else max(self._cursor, ready)
        self._cursor = pts + duration
        text, self._carry = self._carry, ""
        piece = self._piece
        if piece is not None:
            while piece.next_word < len(piece.words) and (
                progress >= 1.0 or piece.starts[piece.next_word] < progress
            ):
                text += piece.words[piece.next_word]
                piece.next_word += 1
        frame = Frame(len(self.frames), pts, duration, max(ready, pts - self.lead_ns), text)
        self.frames.append(frame)
        return frame

    @property
    def end(self) -> Nanos | None:
        """End of the last placed frame (ns), or None before the first."""
        return self._cursor

    def heard(self, t: Nanos) -> tuple[str, Nanos]:
        """What had played by ``t``: the text of the sent frames that had started, and how
        much audio (ns) had played."""
        text, played = [], 0
        for frame in self.frames[: self.sent]:
            if frame.pts > t:
                break
            text.append(frame.text)
            played += min(frame.duration, t - frame.pts)
        return "".join(text), played

    def spoken(self) -> tuple[str, Nanos]:
        """Everything sent (the answer played to its end)."""
        sent = self.frames[: self.sent]
        return "".join(f.text for f in sent), sum(f.duration for f in sent)
