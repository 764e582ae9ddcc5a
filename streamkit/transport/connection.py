"""The thin connection loop: WebSocket frame → codec → session; session event → codec → socket.

:class:`Connection` is the only part of a session that touches ``websockets``. Its receive
loop reads frames, applies the rate limits (text and video: a message over the rate is
discarded with a ``rate_limited`` error; audio: never discarded, *paced* — the loop waits
before taking the frame, so a client sending faster than the rate is slowed down by TCP
backpressure), hands each frame to the session's codec and each decoded command to
:meth:`Session.handle`, and queues what the codec answers. Its sender writes the outbox to
the socket, at most ``limits.send_deadline_ms`` per frame, after which the client is closed
with 4003 (slow consumer).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from streamkit.core.clock import NS_PER_MS
from streamkit.transport.limits import RateLimiter
from streamkit.transport.outbox import OutboxClosed, OutItem
from streamkit.transport.protocol import AudioAppend, ProtocolError

if TYPE_CHECKING:
    from streamkit.transport.session import Session

__all__ = ["Connection"]

log = logging.getLogger("streamkit.session")


class Connection:
    """The socket side of one :class:`~streamkit.transport.session.Session`."""

    def __init__(self, ws: ServerConnection, session: Session, close_timeout_s: float) -> None:
        self.ws = ws
        self.session = session
        self.close_timeout_s = close_timeout_s
        self.close_code: int | None = None

    # -- receiving -----------------------------------------------------------------------

    async def receive(self) -> None:
        """Until the client leaves (or the session closes the connection)."""
        s = self.session
        clock, codec = s.clock, s.codec
        limiter = RateLimiter(s.limits, clock.now())
        audio_pace = RateLimiter(s.limits, clock.now())  # audio waits, never dropped
        try:
            async for message in self.ws:
                decoded = codec.decode(message)
                if any(isinstance(d, AudioAppend) for d in decoded):
                    while wait := audio_pace.delay(clock.now(), len(message)):
                        s.metrics.counter("ws.audio.paced_ns").inc(wait)
                        await clock.sleep(wait)  # not reading: TCP backpressure
                elif not limiter.allow(clock.now(), len(message)):
                    problem = ProtocolError("rate_limited", "message rate or byte rate exceeded")
                    await self.put(codec.refuse(problem))
                    continue
                for item in decoded:
                    if isinstance(item, OutItem):
                        await self.put([item])
                    elif isinstance(item, ProtocolError):
                        await self.put(codec.refuse(item))
                    else:
                        await self.put(codec.result(item, await s.handle(item)))
                if self.close_code is not None:
                    return
        except (ConnectionClosed, OutboxClosed):
            return

    async def put(self, items: list[OutItem]) -> None:
        """Queue a codec's answer; ``error`` events are counted (and may close: 4008)."""
        s = self.session
        for item in items:
            if item.type == "error":
                s.errors += 1
                s.consecutive_errors += 1
                s.metrics.counter("ws.errors").inc()
                if item.code:
                    s.metrics.counter(f"ws.errors.{item.code}").inc()  # by code: /metrics
                log.info("session %s: error %s", s.id, item.code or "?",
                         extra={"event": "error", "session": s.id, "code": item.code})
            await s.outbox.put(item)
        if not any(i.type == "error" for i in items):
            s.consecutive_errors = 0
        limit = s.limits.max_consecutive_errors
        if limit and s.consecutive_errors >= limit:
            await self.close_after_flush(4008, "too many protocol errors")

    # -- sending -------------------------------------------------------------------------

    async def sender(self) -> None:
        s = self.session
        deadline = s.limits.send_deadline_ms / 1000
        while (item := await s.outbox.get()) is not None:
            try:
                async with asyncio.timeout(deadline):
                    await self.ws.send(item.data, text=not item.binary)
            except TimeoutError:
                s.metrics.counter("ws.slow_closes").inc()
                self.close_code = 4003
                s.outbox.close()
                await self.close(4003, "slow consumer")
                return
            except ConnectionClosed:
                s.outbox.close()
                return
            if item.lineage is not None:
                s.metrics.lineage.mark(item.lineage, f"sent.{item.type}", s.clock.now())

    # -- closing -------------------------------------------------------------------------

    async def close_after_flush(self, code: int, reason: str) -> None:
        """Close with ``code`` once queued events went out (bounded by the send deadline)."""
        s = self.session
        self.close_code = code
        deadline = s.clock.now() + s.limits.send_deadline_ms * NS_PER_MS
        while len(s.outbox.core) and s.clock.now() < deadline:
            await s.clock.sleep(5 * NS_PER_MS)
        await self.close(code, reason)

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code``; a client that reads nothing is cut off after the timeout.

        The close frame queues behind unsent data: a client that resumes reading within
        ``close_timeout_s`` sees ``code``, one that never does loses the TCP connection.
        """
        try:
            async with asyncio.timeout(self.close_timeout_s):
                await self.ws.close(code, reason)
        except TimeoutError:
            self.ws.transport.abort()
