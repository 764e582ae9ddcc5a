"""Python client for protocol v1: stream media to a server, receive its events, time them.

Use::

    async with Client.connect("ws://127.0.0.1:8765/ws") as client:
        await client.update(pipeline="assistant")
        await client.stream_audio(samples)          # real-time pace, 20 ms frames
        await client.commit()
        await client.wait_for(lambda e: isinstance(e.event, ResponseDone), timeout_s=30)

Every received event is kept with its arrival time on this process's clock (``LoopClock``,
ns) in :attr:`Client.received` (bounded) and fed to :class:`LatencyLog`, which converts the
server's shared-clock times to local time with the offset measured at ``session.created``
(``server_time_ns`` minus the arrival time: exact to within the one-way network delay, so
on one host the clocks coincide). One background task reads the socket; it ends with the
``connect`` block.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Clock, LoopClock, Nanos
from streamkit.core.events import ResponseDelta, SpeechStopped, TranscriptFinal, TranscriptPartial
from streamkit.core.media import ASR_SAMPLE_RATE, samples_to_ns
from streamkit.transport.codecs.v1 import decode_output_audio, encode_audio, encode_video
from streamkit.transport.protocol import (
    InputCommit,
    OutputAudio,
    ResponseCancel,
    ServerEvent,
    SessionCreated,
    SessionUpdate,
)
from streamkit.transport.resume import Resumer
from streamkit.transport.turns import TurnLog

__all__ = ["Client", "LatencyLog", "Received"]

_decoder: msgspec.json.Decoder[ServerEvent] = msgspec.json.Decoder(ServerEvent)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Received:
    """One server event and when it arrived (local clock, ns)."""

    event: ServerEvent
    at: Nanos
    conn: int = 0
    """Which connection of the session it came on (0, then 1, 2, … after each resume)."""


@dataclass
class LatencyLog:
    """Latencies a client saw, in local-clock ns (``offset`` = server − local clock)."""

    offset: Nanos = 0
    commit: list[Nanos] = field(default_factory=list)
    """Per committed word: arrival of its ``transcript.final`` − the word's end."""
    first_partial: list[Nanos] = field(default_factory=list)
    """Per utterance: arrival of its first partial − its first word's start."""
    eos_to_first_token: list[Nanos] = field(default_factory=list)
    """Per answered utterance: first ``response.delta`` − end of speech (VAD stop or final end)."""
    _eos: dict[str, Nanos] = field(default_factory=dict)
    _partials: set[str] = field(default_factory=set)
    _answered: set[str] = field(default_factory=set)

    def local(self, shared: Nanos) -> Nanos:
        return shared - self.offset

    def observe(self, event: ServerEvent, at: Nanos) -> None:
        if isinstance(event, TranscriptFinal):
            self.commit.extend(at - self.local(w.end) for w in event.words)
            if event.is_last:
                self._eos.setdefault(event.utterance_id, self.local(event.end))
        elif isinstance(event, TranscriptPartial):
            if event.utterance_id not in self._partials and event.words:
                self._partials.add(event.utterance_id)
                self.first_partial.append(at - self.local(event.words[0].start))
        elif isinstance(event, SpeechStopped):
            self._eos[event.utterance_id] = self.local(event.t)
        elif isinstance(event, ResponseDelta) and event.utterance_id not in self._answered:
            self._answered.add(event.utterance_id)
            eos = self._eos.get(event.utterance_id)
            if eos is not None:
                self.eos_to_first_token.append(at - eos)


class Client:
    """One session with a streamkit server (create with :meth:`connect`)."""

    def __init__(self, ws: ClientConnection, created: SessionCreated, clock: Clock) -> None:
        self.ws = ws
        self.created = created
        self.clock = clock
        self.received: deque[Received] = deque(maxlen=100_000)
        self.latency = LatencyLog()
        self.turns = TurnLog()
        """The conversation so far, turn by turn (see :mod:`streamkit.transport.turns`)."""
        self.on_event: Callable[[Received], None] | None = None
        self.on_audio: Callable[[OutputAudio, Nanos], None] | None = None
        """Called with each ``response.audio`` frame and its arrival time (local clock, ns)."""
        self.audio_frames = 0
        self.samples_sent = 0
        self._audio_seq = 0
        self._video_seq = 0
        self._audio_t0: Nanos | None = None
        self._changed = asyncio.Event()
        self._count = 0  # events received (``received`` keeps only the latest)
        self.closed_code: int | None = None
        self.resumer: Resumer | None = None
        """Reconnect state when opened with ``resume=True`` (:mod:`~streamkit.transport.resume`)."""
        self.connection = 0
        self._settings: dict[str, Any] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        origin: str | None = None,
        clock: Clock | None = None,
        on_event: Callable[[Received], None] | None = None,
        resume: bool = False,
        replay_s: float = 30.0,
    ) -> AsyncIterator[Client]:
        """Open a session; the block's end closes it and stops the reader task.

        ``resume``: after an abnormal close or 1001 (a worker died or drains), reconnect to
        ``url`` and resume the session by id, re-sending the audio not yet answered (at
        most ``replay_s`` seconds of it; see :mod:`streamkit.transport.resume`).
        """
        clock = clock if clock is not None else LoopClock()
        headers = {"Authorization": f"Bearer {token}"} if token else None
        options: dict[str, Any] = {
            "additional_headers": headers,
            "origin": origin,
            "max_size": 2**24,
            "open_timeout": 10,
            "close_timeout": 2,
        }
        async with connect(url, **options) as ws:
            first = await ws.recv()
            at = clock.now()
            created = _decoder.decode(first)
            if not isinstance(created, SessionCreated):
                raise RuntimeError(f"expected session.created, got {type(created).__name__}")
            client = cls(ws, created, clock)
            client.on_event = on_event
            if resume:
                client.resumer = Resumer(url, options, clock, replay_s=replay_s)
            client.latency.offset = created.server_time_ns - at
            client.turns.offset = client.latency.offset
            client._keep(Received(created, at))
            async with asyncio.TaskGroup() as group:
                reader = group.create_task(client._reader())
                try:
                    yield client
                finally:
                    if client.resumer is not None:
                        client.resumer.closing = True
                    await client.ws.close()
                    reader.cancel()

    # -- sending -------------------------------------------------------------------------

    async def update(self, **fields: Any) -> None:
        """Send ``session.update`` with the given settings."""
        self._settings.update(fields)
        await self._send_text(_encoder.encode(SessionUpdate(**fields)))

    async def commit(self) -> None:
        await self._send_text(_encoder.encode(InputCommit()))

    async def _send_text(self, data: bytes) -> None:
        if self.resumer is None:
            await self.ws.send(data, text=True)
            return
        await self.resumer.wait_connected(self.resumer.timeout_s)
        with contextlib.suppress(ConnectionClosed):  # resuming: the reader reconnects
            await self.ws.send(data, text=True)

    async def cancel(self, response_id: str | None = None) -> None:
        await self.ws.send(_encoder.encode(ResponseCancel(response_id)), text=True)

    async def send_raw(self, data: str | bytes) -> None:
        """Send any frame as is (tests of malformed input)."""
        await self.ws.send(data)

    async def send_audio(self, samples: npt.NDArray[Any], capture_ns: Nanos | None = None) -> None:
        """One ``audio.append`` frame. ``capture_ns`` defaults to a contiguous sample clock."""
        if capture_ns is None:
            if self._audio_t0 is None:
                self._audio_t0 = self.clock.now() - samples_to_ns(len(samples), ASR_SAMPLE_RATE)
            capture_ns = self._audio_t0 + samples_to_ns(self.samples_sent, ASR_SAMPLE_RATE)
        frame = encode_audio(samples, self._audio_seq, capture_ns)
        index = self.samples_sent
        self.samples_sent += len(samples)
        if self.resumer is not None:  # kept until answered; re-sent after a reconnect
            live = self.resumer.connected.is_set()
            self.resumer.on_audio(index, samples, self.clock.now(), self.latency.offset)
            if not live:
                return
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(frame)
        else:
            await self.ws.send(frame)
        self._audio_seq += 1

    async def send_video(self, jpeg: bytes, capture_ns: Nanos | None = None) -> None:
        capture = self.clock.now() if capture_ns is None else capture_ns
        await self.ws.send(encode_video(jpeg, self._video_seq, capture))
        self._video_seq += 1

    def start_audio_clock(self, t0: Nanos | None = None) -> Nanos:
        """Fix the capture time of the first audio sample (default: now); returns it.

        Audio capture times then follow the sample count from ``t0``; send video stamped
        ``t0 + its media time`` to keep both on one timeline.
        """
        if self._audio_t0 is None:
            self._audio_t0 = self.clock.now() if t0 is None else t0
        return self._audio_t0

    async def stream_audio(
        self, samples: npt.NDArray[np.float32], *, chunk_ms: int = 20, realtime: bool = True
    ) -> None:
        """Send ``samples`` (16 kHz mono) in ``chunk_ms`` frames, at real-time pace.

        Each frame is sent when its last sample would have been captured; its capture time
        is when its first sample was.
        """
        step = ASR_SAMPLE_RATE * chunk_ms // 1000
        self.start_audio_clock()
        assert self._audio_t0 is not None
        base = self._audio_t0 + samples_to_ns(self.samples_sent, ASR_SAMPLE_RATE)
        for start in range(0, len(samples), step):
            chunk = samples[start : start + step]
            capture = base + samples_to_ns(start, ASR_SAMPLE_RATE)
            if realtime:
                await self.clock.sleep_until(capture + samples_to_ns(len(chunk), ASR_SAMPLE_RATE))
            await self.send_audio(chunk, capture)

    # -- receiving -----------------------------------------------------------------------

    def _keep(self, item: Received) -> None:
        self.received.append(item)
        if self.resumer is not None:
            self.resumer.on_event(item.event)
        self._count += 1
        self.latency.observe(item.event, item.at)
        self.turns.observe(item.event, item.at)
        if self.on_event is not None:
            self.on_event(item)
        self._changed.set()

    def _audio(self, data: bytes, at: Nanos) -> None:
        """A binary frame from the server: the spoken answer (``response.audio``)."""
        frame = decode_output_audio(data)
        if isinstance(frame, OutputAudio):
            self.audio_frames += 1
            if self.on_audio is not None:
                self.on_audio(frame, at)

    async def _reader(self) -> None:
        try:
            while True:
                with contextlib.suppress(ConnectionClosed):
                    async for message in self.ws:
                        at = self.clock.now()
                        if isinstance(message, bytes):
                            self._audio(message, at)
                            continue
                        try:
                            event = _decoder.decode(message)
                        except msgspec.MsgspecError:
                            continue
                        self._keep(Received(event, at, self.connection))
                resumer = self.resumer
                if resumer is None or not resumer.should_resume(self.ws.close_code):
                    return
                try:
                    await self._resume(resumer)
                except ConnectionError:
                    return
        finally:
            self.closed_code = self.ws.close_code
            self._changed.set()

    async def _resume(self, resumer: Resumer) -> None:
        """Reconnect, resume the session, re-send the unanswered audio (see ``resume``)."""
        old_id = self.created.session_id
        stale = resumer.unsettled()
        ws, created, at = await resumer.reconnect(old_id)
        kept: deque[Received] = deque(maxlen=self.received.maxlen)
        for item in self.received:  # the new worker sends the unanswered utterance again
            uid = getattr(item.event, "utterance_id", None)
            if item.conn == self.connection and uid in stale:
                resumer.superseded.append(item)
            else:
                kept.append(item)
        self.received = kept
        self.ws, self.created, self.connection = ws, created, resumer.connection
        self.latency.offset = created.server_time_ns - at
        self.turns.offset = self.latency.offset
        self._keep(Received(created, at, self.connection))
        if self._settings:  # the record may predate the last update (or be gone)
            await ws.send(_encoder.encode(SessionUpdate(**self._settings)), text=True)
        t0 = self._audio_t0 if self._audio_t0 is not None else self.clock.now()
        self._audio_seq = await resumer.replay(
            ws.send,
            encode_audio,
            lambda index: t0 + samples_to_ns(index, ASR_SAMPLE_RATE),
            self.latency.offset,
        )

    @property
    def event_count(self) -> int:
        """How many events were received so far (``received`` keeps only the latest)."""
        return self._count

    @property
    def events(self) -> list[ServerEvent]:
        return [r.event for r in self.received]

    def of_type(self, kind: type[Any]) -> list[Any]:
        """Received events of one struct type, in order."""
        return [r.event for r in self.received if isinstance(r.event, kind)]

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Return once ``condition()`` is true, re-checked after every received event.

        Raises ``TimeoutError`` after ``timeout_s`` and ``ConnectionError`` if the server
        closes first.
        """
        deadline = self.clock.now() + round(timeout_s * NS_PER_S)
        while not condition():
            await self._wait_change(deadline)

    async def wait_for(
        self,
        predicate: Callable[[Received], bool],
        timeout_s: float = 30.0,
        *,
        since: int = 0,
    ) -> Received:
        """The first event matching ``predicate`` among those received from event number
        ``since`` on (0: all of them, past and future). Take ``since = client.event_count``
        *before* sending a request to wait for the reply to it, not to an earlier one.

        Raises ``TimeoutError`` after ``timeout_s`` and ``ConnectionError`` if the server
        closes first.
        """
        deadline = self.clock.now() + round(timeout_s * NS_PER_S)
        seen = since
        while True:
            items = list(self.received)
            first = self._count - len(items)  # index (in all events) of items[0]
            for item in items[max(0, seen - first) :]:
                if predicate(item):
                    return item
            seen = self._count
            await self._wait_change(deadline)

    async def _wait_change(self, deadline: Nanos) -> None:
        """Wait for the next event (or 100 ms); raise at ``deadline`` or once closed."""
        if self.closed_code is not None:
            raise ConnectionError(f"server closed the session (code {self.closed_code})")
        remaining = deadline - self.clock.now()
        if remaining <= 0:
            raise TimeoutError("no matching event")
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(remaining, 100 * NS_PER_MS) / NS_PER_S):
                await self._changed.wait()
