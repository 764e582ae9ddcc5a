"""A held speculation's first piece, synthesised before the answer is released.

The responder announces what a held speculation has generated so far after every token
(:class:`~streamkit.core.events.ResponseHeld`); :class:`PreparedPiece` (owned by the TTS stage,
one per session) starts synthesising the first piece as soon as that text has one, so its
audio is ready when the turn is confirmed. The released answer takes it
(:meth:`PreparedPiece.take`) only when its first piece is the same spoken text; otherwise the
prepared audio is dropped, never sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from streamkit.core.events import ResponseHeld
from streamkit.core.media import AudioChunk
from streamkit.tts.backend import Speech, TTSEngine, speakable
from streamkit.tts.chunker import ChunkerConfig, SpeechChunker

__all__ = ["PreparedPiece", "first_piece"]

_CLAUSE_MARKS = tuple(".,;:!?")


def first_piece(held: ResponseHeld, chunker: ChunkerConfig) -> str:
    """The first piece of ``held`` as spoken ("" while it has none). More text may follow
    an incomplete one: a clause or sentence mark at its very end is most likely a boundary (a
    space follows), a bare word at the end may go on ("lei" + "sure")."""
    cutter = SpeechChunker(chunker)
    if held.complete:
        pieces = cutter.feed(held.text) + cutter.flush()
    else:
        ends_clause = held.text.rstrip()[-1:] in _CLAUSE_MARKS
        pieces = cutter.feed(held.text + (" " if ends_clause else ""))
    return speakable(pieces[0]) if pieces else ""


@dataclass
class _Piece:
    response_id: str
    text: str  # as spoken (speakable)
    task: asyncio.Task[list[AudioChunk] | None]


class PreparedPiece:
    """At most one prepared first piece (see the module docstring).

    Args:
        engine: the voice (its one slot is shared with the answers' own synthesis).
        chunker: where answers are cut (the same as the stage's).
    """

    def __init__(self, engine: TTSEngine, chunker: ChunkerConfig) -> None:
        self.engine = engine
        self.chunker = chunker
        self._piece: _Piece | None = None

    def held(self, held: ResponseHeld, group: asyncio.TaskGroup) -> bool:
        """A speculation's text so far: keep the synthesis of the same first piece, replace
        another one. Returns whether a new synthesis started."""
        text = first_piece(held, self.chunker)
        piece = self._piece
        if piece is not None and piece.response_id == held.response_id and text in ("", piece.text):
            return False  # no first piece yet, or the one being prepared
        self.drop()
        if not text:
            return False  # no first piece yet (or a silent one): nothing to prepare
        self._piece = _Piece(held.response_id, text, group.create_task(self._collect(text)))
        return True

    def drop(self) -> None:
        """Cancel the piece being prepared, if any."""
        piece, self._piece = self._piece, None
        if piece is not None:
            piece.task.cancel()

    def take(self, response_id: str, text: str) -> Speech | None:
        """The prepared audio of answer ``response_id``'s first piece (``text``: as spoken),
        if that is what was prepared; any other prepared piece is dropped."""
        piece, self._piece = self._piece, None
        if piece is None:
            return None
        if piece.response_id != response_id or piece.text != text:
            piece.task.cancel()
            return None
        return Speech(self._replay(piece.task, text))

    async def _collect(self, text: str) -> list[AudioChunk] | None:
        """All of ``text``'s audio, or None when the voice failed (the answer's own
        synthesis then tries again and reports the error)."""
        speech = self.engine.synthesize(text)
        try:
            return [chunk async for chunk in speech]
        except Exception:  # reported by the answer's own synthesis, if it comes
            return None
        finally:
            await speech.aclose()

    async def _replay(
        self, task: asyncio.Task[list[AudioChunk] | None], text: str
    ) -> AsyncIterator[AudioChunk]:
        chunks = await task
        if chunks is None:  # the voice failed while preparing: synthesise as usual
            speech = self.engine.synthesize(text)
            try:
                async for chunk in speech:
                    yield chunk
            finally:
                await speech.aclose()
            return
        for chunk in chunks:
            yield chunk
