"""Client side of resuming: reconnect after an abnormal close or 1001 and carry on the session.

:class:`Resumer` is what :class:`~streamkit.transport.client.Client` uses when opened with
``resume=True``. It keeps the audio not yet answered in a :class:`ReplayBuffer`, counts the
answers received, and after a close that is not the client's own (1001 drain, 1006 a dead
worker, 1012/1013) opens ``<url>?resume=<session_id>&answered=<n>`` — through the load
balancer, so any worker — and re-sends the buffered audio before live audio continues.

Nothing is answered twice: the buffer is cut at the end of each answered utterance
(``response.done``), so only the utterance in flight is re-sent; events the dead connection
had sent about that utterance (its partials, finals, answer deltas) are taken out of the
client's log (kept in ``superseded``), since the new worker sends them again. The server
drops stored turns whose answers the client never received (``answered``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Clock, Nanos
from streamkit.core.events import ResponseDone, TranscriptFinal
from streamkit.transport.protocol import ServerEvent, SessionCreated
from streamkit.transport.replay import ReplayBuffer, SampleAnchor

__all__ = ["RESUME_CODES", "Resumer", "resume_url"]

log = logging.getLogger(__name__)

RESUME_CODES = frozenset({1001, 1006, 1012, 1013})
"""Close codes after which a resuming client reconnects (1006: no close frame at all)."""

SETTLE_MARGIN_NS = 300 * NS_PER_MS
"""Audio up to this long after an answered utterance's last word is dropped with it: the
tail of a word re-sent could become an utterance of its own (the anchor is an estimate)."""

_decoder: msgspec.json.Decoder[ServerEvent] = msgspec.json.Decoder(ServerEvent)


def resume_url(url: str, session_id: str, answered: int) -> str:
    """``url`` with ``resume`` and ``answered`` added to its query (other parameters kept)."""
    parts = urlsplit(url)
    extra = urlencode({"resume": session_id, "answered": answered})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class Resumer:
    """Reconnect state of one client session (see the module docstring).

    Args:
        url: the URL first connected to (a balancer's, typically).
        connect_kwargs: the arguments of ``websockets.connect`` used the first time.
        clock: the client's clock.
        replay_s: seconds of unanswered audio kept (older is dropped and counted).
        timeout_s: how long reconnecting is tried before giving up.
    """

    def __init__(
        self,
        url: str,
        connect_kwargs: dict[str, Any],
        clock: Clock,
        *,
        replay_s: float = 30.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.connect_kwargs = connect_kwargs
        self.clock = clock
        self.buffer = ReplayBuffer(round(replay_s * 16_000))
        self.timeout_s = timeout_s
        self.answered = 0
        self.connection = 0
        self.resumes = 0
        """Reconnects that resumed the same session id."""
        self.fresh = 0
        """Reconnects that got a new session (the store had no record: history lost)."""
        self.connected = asyncio.Event()
        self.connected.set()
        self.closing = False
        self.superseded: list[Any] = []
        self._anchor: SampleAnchor | None = None
        self._final_end: dict[str, Nanos] = {}
        self._open: set[str] = set()
        self._sent_upto = 0

    # -- fed by the client ---------------------------------------------------------------

    def on_audio(
        self, index: int, samples: npt.NDArray[Any], sent_at: Nanos, offset: Nanos
    ) -> None:
        """Audio sample ``index`` onwards was (or is about to be) sent at ``sent_at``."""
        self.buffer.append(index, samples)
        if self.connected.is_set():
            self._sent_upto = index + len(samples)
            if self._anchor is None:  # the server anchors a connection's first frame
                duration = len(samples) * NS_PER_S // 16_000
                self._anchor = SampleAnchor(index, sent_at + offset - duration)

    def on_event(self, event: ServerEvent) -> None:
        """A server event arrived on the current connection."""
        uid = getattr(event, "utterance_id", None)
        if uid is None:
            return
        if isinstance(event, TranscriptFinal):
            self._final_end[uid] = max(self._final_end.get(uid, event.end), event.end)
        if isinstance(event, ResponseDone):
            self.answered += 1  # counted as the server counts them (cancelled ones too)
            if event.cancelled:  # cut short (shutdown, barge-in): not settled
                return
            self._open.discard(uid)
            end = self._final_end.pop(uid, None)
            if end is not None and self._anchor is not None:
                self.buffer.settle(self._anchor.to_index(end + SETTLE_MARGIN_NS))
        else:
            self._open.add(uid)

    def should_resume(self, code: int | None) -> bool:
        return not self.closing and (code is None or code in RESUME_CODES)

    def unsettled(self) -> set[str]:
        """Utterance ids of the current connection that have no answer yet."""
        return set(self._open)

    # -- reconnecting --------------------------------------------------------------------

    async def reconnect(self, session_id: str) -> tuple[ClientConnection, SessionCreated, Nanos]:
        """Open a new connection resuming ``session_id`` (retried with backoff until
        ``timeout_s``; a 503 — every worker full or draining — is retried too)."""
        self.connected.clear()
        self._anchor = None
        self._final_end.clear()
        self._open.clear()
        deadline = self.clock.now() + round(self.timeout_s * NS_PER_S)
        delay_ns = 100 * NS_PER_MS
        while True:
            url = resume_url(self.url, session_id, self.answered)
            try:
                ws = await connect(url, **self.connect_kwargs)
                first = await ws.recv()
                at = self.clock.now()
                created = _decoder.decode(first)
                if not isinstance(created, SessionCreated):
                    raise InvalidHandshake(f"expected session.created, got {type(created)}")
                break
            except (OSError, InvalidHandshake, InvalidStatus, TimeoutError, EOFError) as error:
                if self.clock.now() + delay_ns > deadline:
                    raise ConnectionError(f"could not resume session {session_id}") from error
                log.info("resume: %s; retrying", error)
                await self.clock.sleep(delay_ns)
                delay_ns = min(2 * delay_ns, NS_PER_S)
            except Exception as error:  # e.g. ConnectionClosed during the first recv
                if self.clock.now() + delay_ns > deadline:
                    raise ConnectionError(f"could not resume session {session_id}") from error
                await self.clock.sleep(delay_ns)
        self.connection += 1
        if created.session_id == session_id:
            self.resumes += 1
        else:
            self.fresh += 1
        return ws, created, at

    async def replay(self, send: Any, encode: Any, capture_of: Any, offset: Nanos) -> int:
        """Re-send the buffered audio on the new connection, then let live audio through.

        ``send(data)`` sends one frame, ``encode(samples, seq, capture_ns)`` builds it and
        ``capture_of(index)`` is the capture time of sample ``index``. Returns the next
        frame sequence number. Audio appended while replaying is sent too, in order."""
        seq = 0
        sent_upto = self.buffer.start if self.buffer.start is not None else self._sent_upto
        while True:
            todo: Sequence[tuple[int, npt.NDArray[Any]]] = [
                c for c in self.buffer.pending() if c[0] + len(c[1]) > sent_upto
            ]
            if not todo:
                break
            for index, samples in todo:
                if index < sent_upto:
                    samples = samples[sent_upto - index :]
                    index = sent_upto
                now = self.clock.now()
                if self._anchor is None:
                    duration = len(samples) * NS_PER_S // 16_000
                    self._anchor = SampleAnchor(index, now + offset - duration)
                await send(encode(samples, seq, capture_of(index)))
                seq += 1
                sent_upto = index + len(samples)
        self._sent_upto = sent_upto
        self.connected.set()  # no await since the last check: nothing slips in between
        return seq

    async def wait_connected(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
