"""The Realtime codec's conversation state: user items and the response lifecycle (pure).

:class:`Items` turns the pipeline's utterances into user items: an utterance belongs to the
*buffer item* (the audio not committed yet) until a commit (server VAD's end of speech, or
the client's ``input_audio_buffer.commit``) makes the item part of the conversation; its
transcript is the committed words of its utterances, sent as append-only deltas, then
``completed`` once every utterance's last final arrived (responses:
:mod:`~streamkit.transport.codecs.realtime_responses`).

Events are written through ``emit`` (a dict without ``event_id``; the codec stamps it).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamkit.transport.codecs.realtime_parse import check_truncate
from streamkit.transport.codecs.realtime_shapes import Problem, user_audio_item, user_item

__all__ = ["Emit", "Items"]

Emit = Callable[[dict[str, Any]], None]
_KEPT = 64  # utterances / responses remembered for late events


@dataclass
class _UserItem:
    id: str
    uids: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    pieces: list[tuple[str, str]] = field(default_factory=list)  # (uid, committed text)
    sent: int = 0  # pieces already sent as deltas
    transcript: str = ""
    seconds: float = 0.0
    committed: bool = False
    completed: bool = False
    discarded: bool = False


class Items:
    """User items of one connection (see the module docstring)."""

    def __init__(self, emit: Emit, prefix: str) -> None:
        self._emit = emit
        self._prefix = prefix
        self._ids = itertools.count(1)
        self.last_id: str | None = None
        self.buffer: _UserItem | None = None
        self._by_uid: OrderedDict[str, _UserItem] = OrderedDict()
        self._open: list[_UserItem] = []  # committed, transcript not complete
        self.transcribing = False  # the session's audio.input.transcription is set
        self.store: OrderedDict[str, dict[str, Any]] = OrderedDict()  # for item.retrieve
        self.pending_create: tuple[str, str, list[Any]] | None = None

    def remember(self, item: dict[str, Any]) -> dict[str, Any]:
        """Keep the latest shape of ``item`` for ``conversation.item.retrieve``."""
        self.store[item["id"]] = item
        self.store.move_to_end(item["id"])
        while len(self.store) > _KEPT:
            self.store.popitem(last=False)
        return item

    def new_id(self) -> str:
        return f"{self._prefix}{next(self._ids):03d}"

    def _buffer(self) -> _UserItem:
        if self.buffer is None:
            self.buffer = _UserItem(self.new_id())
        return self.buffer

    def _attach(self, uid: str) -> _UserItem:
        item = self._by_uid.get(uid)
        if item is None:
            item = self._buffer()
            item.uids.append(uid)
            self._by_uid[uid] = item
            while len(self._by_uid) > _KEPT:
                self._by_uid.popitem(last=False)
        return item

    def buffer_uids(self) -> tuple[str, ...]:
        return tuple(self.buffer.uids) if self.buffer is not None else ()

    def awaiting(self) -> tuple[str, ...]:
        """Utterances of committed items whose transcript is not complete yet."""
        return tuple(u for item in self._open for u in item.uids if u not in item.done)

    # -- from the pipeline ---------------------------------------------------------------

    def speech_started(self, uid: str, start_ms: int, vad: bool) -> None:
        fresh = uid not in self._by_uid
        item = self._attach(uid)
        if vad and fresh and not item.committed:
            self._emit(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": start_ms,
                    "item_id": item.id,
                }
            )

    def speech_stopped(self, uid: str, end_ms: int, vad: bool) -> None:
        item = self._by_uid.get(uid)
        if not vad or item is None or item.committed or item.discarded:
            return
        self._emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": end_ms,
                "item_id": item.id,
            }
        )
        self._commit(item)

    def final(self, uid: str, text: str, is_last: bool, seconds: float) -> None:
        item = self._attach(uid)
        if item.discarded:
            return
        if text:
            item.pieces.append((uid, text))
        item.seconds += seconds
        if is_last:
            item.done.add(uid)
        if item.committed:
            self._flush(item)
            self._complete(item)

    # -- from the client -----------------------------------------------------------------

    def commit(self, uids: tuple[str, ...]) -> None:
        """The session committed the input; ``uids``: the utterances heard since the last
        commit (their events may not have arrived yet). They all join the buffer item."""
        item = self._buffer()
        for uid in uids:
            if uid not in self._by_uid:
                self._attach(uid)
        self._commit(item)

    def clear(self) -> None:
        if self.buffer is not None:
            self.buffer.discarded = True
            self.buffer = None

    def create(self, item_id: str, role: str, content: list[Any]) -> None:
        item = user_item(item_id, content)
        item["role"] = role
        self.remember(item)
        previous, self.last_id = self.last_id, item_id
        self._emit({"type": "conversation.item.added", "item": item, "previous_item_id": previous})
        self._emit({"type": "conversation.item.done", "item": item, "previous_item_id": previous})

    def retrieve(self, item_id: Any) -> Problem | None:
        """``conversation.item.retrieve``: the stored item goes out, or why it cannot."""
        item = self.store.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            return ("invalid_value", "item_id", f"no item {str(item_id)[:80]!r} here")
        self._emit({"type": "conversation.item.retrieved", "item": item})
        return None

    def truncate(self, item_id: Any, end_ms: Any) -> Problem | None:
        """``conversation.item.truncate`` of a spoken assistant item at ``end_ms``: the
        acknowledgement goes out, or why it cannot."""
        item = self.store.get(item_id) if isinstance(item_id, str) else None
        problem = check_truncate(item, item_id, end_ms)
        if problem is None:
            truncated = {"item_id": item_id, "content_index": 0, "audio_end_ms": end_ms}
            self._emit({"type": "conversation.item.truncated", **truncated})
        return problem

    # -- the item's life -----------------------------------------------------------------

    def _commit(self, item: _UserItem) -> None:
        item.committed = True
        if self.buffer is item:
            self.buffer = None
        previous, self.last_id = self.last_id, item.id
        self._emit(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item.id,
                "previous_item_id": previous,
            }
        )
        self._emit(
            {
                "type": "conversation.item.added",
                "item": self.remember(user_audio_item(item.id, None)),
                "previous_item_id": previous,
            }
        )
        self._open.append(item)
        self._flush(item)
        self._complete(item)

    def _flush(self, item: _UserItem) -> None:
        """Send the item's committed words not sent yet (append-only deltas)."""
        while item.sent < len(item.pieces):
            text = item.pieces[item.sent][1]
            if not item.transcript:
                text = text.lstrip()
            elif text and not text[:1].isspace() and not item.transcript[-1:].isspace():
                text = " " + text  # committed pieces are whole words
            item.sent += 1
            if not text:
                continue
            item.transcript += text
            if self.transcribing:
                self._delta(item, text)

    def _delta(self, item: _UserItem, text: str) -> None:
        self._emit(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item.id,
                "content_index": 0,
                "delta": text,
            }
        )

    def _complete(self, item: _UserItem) -> None:
        if item.completed or any(u not in item.done for u in item.uids):
            return
        item.completed = True
        self._open.remove(item)
        if self.transcribing:
            if not item.transcript:
                self._delta(item, "")  # at least one delta precedes completed
            self._emit(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item.id,
                    "content_index": 0,
                    "transcript": item.transcript,
                    "usage": {"type": "duration", "seconds": round(item.seconds, 3)},
                }
            )
        transcript = item.transcript if self.transcribing else None
        done = self.remember(user_audio_item(item.id, transcript))
        self._emit({"type": "conversation.item.done", "item": done})
