"""Keeping a session's conversation in a session store, and knowing when its turns are done.

A client resumes a session by opening ``/ws?resume=<session_id>&answered=<n>`` on any
worker: ``n`` is how many answers it has received. The worker loads the record from the
store (:mod:`streamkit.store`); when the record holds more answers than the client received
(the old worker stored an answer the client never saw), the newest turns beyond ``n`` are
dropped — the client re-sends that utterance from its own buffer and gets it answered once.
The session then keeps its id and settings, and its history goes back into the pipeline
(``controls.restore``) before the first utterance.

Two parts, after the house pattern:

- :class:`TurnTracker` (pure): lineage marks in, "which turns are open" and "a turn just
  completed" out. A turn opens at its utterance's first mark and completes when its answer
  was written to the socket (``sent.response.done``), or, in a pipeline that does not
  answer, when ``speech.stopped`` was sent.
- :class:`SessionKeeper` (thin): fed the session's lineage marks (stages never call it),
  saves the record off the media path in its own task (after each completed turn, at start
  and at the end), and lets a drain wait until the turns open at drain time are done.

Ownership: the keeper owns nothing of the session; it reads the session's id, config and
controls. What may block: only :meth:`SessionKeeper.run` awaits the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import msgspec

from streamkit.core.clock import NS_PER_S, Clock, Nanos
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.store.backend import SessionRecord, SessionStore, StoredTurn, StoreUnavailable
from streamkit.transport.protocol import SessionConfig

if TYPE_CHECKING:
    from streamkit.transport.session import PipelineFactory, Session, SessionControls

__all__ = ["ResumeRequest", "SessionKeeper", "TurnTracker", "parse_resume"]

log = logging.getLogger(__name__)

DONE_MARK = "sent.response.done"
STOPPED_MARK = "sent.speech.stopped"


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """What the client asked for in the ``/ws`` query (``resume``, ``answered``)."""

    session_id: str
    answered: int | None = None


def parse_resume(query: str) -> ResumeRequest | None:
    """The resume request in a URL query, or None (absent or malformed: a fresh session)."""
    params = parse_qs(query)
    sid = params.get("resume", [""])[0]
    if not sid or len(sid) > 64 or not all(c.isalnum() or c in "-_" for c in sid):
        return None
    answered: int | None = None
    raw = params.get("answered", [""])[0]
    if raw.isdigit():
        answered = int(raw)
    return ResumeRequest(sid, answered)


def trim_record(record: SessionRecord, answered: int | None) -> SessionRecord:
    """The record as the client knows it: answers it never received are dropped (pure)."""
    if answered is None or answered >= record.answered:
        return record
    extra = record.answered - answered
    keep = max(0, len(record.turns) - extra)
    return msgspec.structs.replace(record, turns=record.turns[:keep], answered=answered)


class TurnTracker:
    """Which turns are open, from lineage marks (pure; see the module docstring).

    Args:
        answers: the pipeline answers each utterance (else a turn ends at end of speech).
        remember: completed utterance ids kept, so late marks do not reopen them.
    """

    def __init__(self, answers: bool = True, remember: int = 256) -> None:
        self.answers = answers
        self.completed = 0
        self._open: OrderedDict[str, None] = OrderedDict()
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    @property
    def open(self) -> frozenset[str]:
        return frozenset(self._open)

    def mark(self, uid: str, event: str) -> bool:
        """Feed one first mark; True when it completed a turn."""
        if uid in self._closed:
            return False
        done = event == DONE_MARK if self.answers else event == STOPPED_MARK
        if not done:
            self._open[uid] = None
            return False
        self._open.pop(uid, None)
        self._closed[uid] = None
        while len(self._closed) > self._remember:
            self._closed.popitem(last=False)
        self.completed += 1
        return True


class SessionKeeper:
    """Saves one session's record and tracks its turns (see the module docstring).

    Args:
        store: where records go.
        clock: the shared clock (deadlines, the session's age).
        record: the record this session resumes (already trimmed), or None for a new one.
    """

    def __init__(
        self, store: SessionStore, clock: Clock, record: SessionRecord | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.record = record
        self.tracker = TurnTracker()
        self.saves = 0
        self.save_errors = 0
        self._session: Session | None = None
        self._controls: Any = None
        self._pipeline: Pipeline | None = None
        self._dirty = asyncio.Event()
        self._changed = asyncio.Event()
        self._closing = False

    @classmethod
    async def open(
        cls, store: SessionStore, clock: Clock, resume: ResumeRequest | None
    ) -> SessionKeeper:
        """A keeper for a new session, or for the stored one ``resume`` names (a missing,
        expired or unreadable record gives a new session; a store error is logged)."""
        record: SessionRecord | None = None
        if resume is not None:
            try:
                record = await store.load(resume.session_id)
            except StoreUnavailable as error:
                log.warning("session store: cannot load %s: %s", resume.session_id, error)
            if record is not None:
                record = trim_record(record, resume.answered)
        return cls(store, clock, record)

    @property
    def resumed(self) -> bool:
        return self.record is not None

    def config(self, default: SessionConfig) -> SessionConfig:
        """The settings the session starts with (the stored ones when resuming)."""
        if self.record is None or not self.record.config:
            return default
        try:
            return msgspec.convert(self.record.config, SessionConfig)
        except msgspec.ValidationError:
            return default

    def wrap(self, factories: Mapping[str, PipelineFactory]) -> dict[str, PipelineFactory]:
        """The session's factories: each restores the stored history into what it built."""
        return {name: self._wrapped(factory) for name, factory in factories.items()}

    def _wrapped(self, factory: PipelineFactory) -> PipelineFactory:
        def build(
            source: Stage, sink: Stage, metrics: MetricsRegistry
        ) -> tuple[Pipeline, SessionControls]:
            pipeline, controls = factory(source, sink, metrics)
            self._pipeline, self._controls = pipeline, controls
            self.tracker.answers = bool(getattr(controls, "answers", True))
            restore = getattr(controls, "restore", None)
            if self.record is not None and self.record.turns and callable(restore):
                restore(self.record.turns, self.record.age_ns)
            return pipeline, controls

        return build

    def attach(self, session: Session) -> None:
        """Keep ``session`` (feed it marks with :meth:`on_mark`); a resumed session takes the
        stored id."""
        self._session = session
        if self.record is not None:
            session.id = self.record.session_id
        self._dirty.set()  # the first save makes the id resumable at once

    def on_mark(self, uid: str, event: str) -> bool:
        """Feed one lineage mark of the session; True when it completed a turn (a save is
        then scheduled)."""
        completed = self.tracker.mark(uid, event)
        if completed:
            self._dirty.set()
        self._changed.set()
        return completed

    # -- saving --------------------------------------------------------------------------

    def snapshot(self) -> SessionRecord:
        """The record as it stands now."""
        assert self._session is not None
        session = self._session
        base = self.record
        turns: tuple[StoredTurn, ...] = base.turns if base is not None else ()
        history = getattr(self._controls, "history", None)
        if callable(history):
            turns = tuple(history())
        age: Nanos = base.age_ns if base is not None else 0
        if self._pipeline is not None and self._pipeline.state.base_time is not None:
            age = self.clock.now() - self._pipeline.state.base_time
        answered = (base.answered if base is not None else 0) + (
            self.tracker.completed if self.tracker.answers else 0
        )
        config = msgspec.to_builtins(session.config)
        return SessionRecord(
            session_id=session.id,
            config=config,
            instructions=config.get("instructions"),
            turns=turns,
            answered=answered,
            age_ns=age,
        )

    async def run(self) -> None:
        """Save whenever a turn completed, until :meth:`close`; then save once more."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            closing = self._closing
            if self._session is not None:
                try:
                    await self.store.save(self.snapshot())
                    self.saves += 1
                except StoreUnavailable as error:
                    self.save_errors += 1
                    self._session.metrics.counter("store.errors").inc()
                    if self.save_errors == 1:
                        log.warning("session store: cannot save %s: %s", self._session.id, error)
            if closing:
                return

    def close(self) -> None:
        """The session ended: one last save, then :meth:`run` returns."""
        self._closing = True
        self._dirty.set()

    # -- draining ------------------------------------------------------------------------

    async def settle(self, deadline: Nanos) -> bool:
        """Wait until the turns open now have completed, or ``deadline`` (shared clock, ns).
        Returns whether they all did."""
        waiting = set(self.tracker.open)
        while waiting & self.tracker.open:
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining / NS_PER_S):
                    await self._changed.wait()
        return True
