"""Recording sessions to MCAP and reading them back (see :mod:`streamkit.record.schema`).

- :class:`SessionWriter` — synchronous writer (owned by one task/thread). Messages are
  grouped into zstd-compressed chunks; a chunk is finished and *flushed to the OS* when it
  holds ``chunk_bytes`` or spans ``max_chunk_age`` of shared-clock time, so a process killed
  with SIGKILL loses at most the chunk in progress. ``close()`` writes the summary (indexes,
  statistics) so the file is also seekable.
- :class:`Recorder` — a sink-like stage: every input port (any names) is written as it
  arrives, with the capture pts (``publish_time``) and the arrival time at the recorder
  (``log_time``); metrics snapshots every ``metrics_every`` ns and once at the end (with
  raw histogram samples). It may block the loop briefly on file I/O (one chunk compress +
  write per ``chunk_bytes``).
- :func:`read_session` / :func:`iter_messages` — read a session, including a truncated one
  (killed recorder: no summary, partial last chunk): every complete chunk is returned and
  :attr:`Session.truncated` is set.
"""

from __future__ import annotations

import asyncio
import datetime
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mcap.exceptions import McapError
from mcap.records import Channel, Footer, Message, Metadata, Schema
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Control, EndOfStream, Packet
from streamkit.core.stage import StageContext
from streamkit.record.schema import (
    SCHEMAS,
    Encoded,
    MetricsSample,
    decode_message,
    encode_control,
    encode_metrics,
    encode_packet,
)

__all__ = [
    "PROFILE",
    "SESSION_METADATA",
    "RecordedMessage",
    "Recorder",
    "Session",
    "SessionWriter",
    "default_session_path",
    "iter_messages",
    "read_session",
]

PROFILE = "streamkit"
SESSION_METADATA = "streamkit.session"


def default_session_path() -> Path:
    """The bundled real session (``streamkit/data/default_session.mcap``, ~13 s, 3 turns)."""
    return Path(__file__).resolve().parents[1] / "data" / "default_session.mcap"


class SessionWriter:
    """Writes packets, control events and metrics into one MCAP file.

    Args:
        path: output file (created/truncated).
        chunk_bytes: finish the chunk in progress once it holds this many bytes.
        max_chunk_age: … or once it spans this much shared-clock time (ns) of ``log_time``.
        jpeg_quality: JPEG quality (0–100) for video frames.
        metadata: extra ``streamkit.session`` metadata (strings).

    Not thread-safe; every call may block on file I/O.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_bytes: int = 256 * 1024,
        max_chunk_age: Nanos = NS_PER_S,
        jpeg_quality: int = 80,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.max_chunk_age = max_chunk_age
        self.jpeg_quality = jpeg_quality
        self._file: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self._writer = Writer(
            self._file, chunk_size=1 << 40, compression=CompressionType.ZSTD
        )
        self._writer.start(profile=PROFILE, library="streamkit")
        self._schemas: dict[str, int] = {}
        self._channels: dict[tuple[str, str], int] = {}
        self._pending = 0
        self._chunk_start: Nanos | None = None
        self._closed = False
        self.messages = 0
        self.chunks = 0
        meta = {
            "created_utc": datetime.datetime.now(datetime.UTC).isoformat(),
            "format": "streamkit-session/1",
            **dict(metadata or {}),
        }
        self._writer.add_metadata(SESSION_METADATA, meta)
        self._file.flush()

    @property
    def closed(self) -> bool:
        return self._closed

    def add_metadata(self, name: str, data: Mapping[str, str]) -> None:
        """Write a metadata record now (outside chunks; flushed at once)."""
        self._check_open()
        self._writer.add_metadata(name, dict(data))
        self._file.flush()

    def write_packet(self, packet: Packet[Any], arrival: Nanos) -> None:
        """Record ``packet`` that reached the recorder at ``arrival`` (ns, shared clock)."""
        self._write(encode_packet(packet, jpeg_quality=self.jpeg_quality), packet.pts, arrival)

    def write_control(self, item: Control, arrival: Nanos) -> None:
        """Record a gap / flush / end-of-stream seen at ``arrival`` (ns)."""
        self._write(encode_control(item, arrival), arrival, arrival)

    def write_metrics(self, metrics: MetricsRegistry, t: Nanos, *, samples: bool = False) -> None:
        """Record ``metrics.snapshot()`` taken at ``t``; ``samples`` adds raw histogram values."""
        raw = {n: h.values() for n, h in metrics.histograms.items()} if samples else None
        self._write(encode_metrics(metrics.snapshot(), t, raw), t, t)

    def flush(self) -> None:
        """Finish the chunk in progress and hand it to the OS (survives SIGKILL)."""
        self._check_open()
        if self._pending:
            self._writer.flush()  # type: ignore[no-untyped-call]
            self.chunks += 1
        self._file.flush()
        self._pending = 0
        self._chunk_start = None

    def close(self) -> None:
        """Finish the last chunk, write the summary section and close the file (idempotent)."""
        if self._closed:
            return
        if self._pending:
            self.chunks += 1
        self._writer.finish()  # type: ignore[no-untyped-call]
        self._file.close()
        self._closed = True

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"session {self.path} is closed")

    def _channel(self, topic: str, schema: str) -> int:
        key = (topic, schema)
        channel = self._channels.get(key)
        if channel is None:
            schema_id = self._schemas.get(schema)
            if schema_id is None:
                schema_id = self._writer.register_schema(schema, "jsonschema", SCHEMAS[schema])
                self._schemas[schema] = schema_id
            channel = self._writer.register_channel(topic, "json", schema_id)
            self._channels[key] = channel
        return channel

    def _write(self, enc: Encoded, publish: Nanos, log: Nanos) -> None:
        self._check_open()
        channel = self._channel(enc.topic, enc.schema)
        self._writer.add_message(
            channel, log_time=max(0, log), data=enc.data, publish_time=max(0, publish),
            sequence=self.messages & 0xFFFFFFFF,
        )
        self.messages += 1
        self._pending += len(enc.data)
        if self._chunk_start is None:
            self._chunk_start = log
        if self._pending >= self.chunk_bytes or log - self._chunk_start >= self.max_chunk_age:
            self.flush()


class Recorder:
    """A stage that records every input port into a :class:`SessionWriter`.

    Args:
        target: a path (the recorder owns and closes the writer) or an open writer (the
            caller owns it; the recorder only flushes).
        name: stage name.
        metrics_every: shared-clock interval (ns) between metrics snapshots, taken when a
            packet arrives; a final snapshot with raw histogram samples is written at the end.
    """

    def __init__(
        self,
        target: str | Path | SessionWriter,
        *,
        name: str = "recorder",
        metrics_every: Nanos = 500 * NS_PER_MS,
    ) -> None:
        self.name = name
        self._target = target
        self.metrics_every = metrics_every
        self.writer: SessionWriter | None = target if isinstance(target, SessionWriter) else None

    async def setup(self, ctx: StageContext) -> None:
        if self.writer is None:
            assert not isinstance(self._target, SessionWriter)
            self.writer = SessionWriter(self._target)

    async def run(self, ctx: StageContext) -> None:
        writer = self.writer
        assert writer is not None, "setup() not run"
        writer.add_metadata("streamkit.recorder", {"base_time_ns": str(ctx.base_time)})
        last_metrics: list[Nanos] = [ctx.clock.now()]

        async def pump(port: str) -> None:
            inport = ctx.input(port)
            while True:
                item = await inport.get()
                now = ctx.clock.now()
                if isinstance(item, Packet):
                    writer.write_packet(item, now)
                    if now - last_metrics[0] >= self.metrics_every:
                        last_metrics[0] = now
                        writer.write_metrics(ctx.metrics, now)
                else:
                    writer.write_control(item, now)
                    if isinstance(item, EndOfStream):
                        return

        try:
            async with asyncio.TaskGroup() as group:
                for port in ctx.inputs:
                    group.create_task(pump(port), name=f"{self.name}:{port}")
        finally:
            if not writer.closed:
                writer.write_metrics(ctx.metrics, ctx.clock.now(), samples=True)
                if isinstance(self._target, SessionWriter):
                    writer.flush()
                else:
                    writer.close()


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """One stored message: topic, schema, times (ns) and the decoded item."""

    topic: str
    schema: str
    log_time: Nanos
    publish_time: Nanos
    item: Packet[Any] | Control | MetricsSample


@dataclass
class Session:
    """A whole session in memory (sessions are short; a minute of 25 fps video ≈ 30 MB)."""

    path: Path
    messages: list[RecordedMessage]
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    truncated: bool = False
    """True when the file ends without its footer (recorder killed): complete chunks only."""

    def topics(self) -> list[str]:
        return sorted({m.topic for m in self.messages})

    def packets(self, topic: str) -> list[Packet[Any]]:
        """The packets of one topic in file order."""
        return [m.item for m in self.messages if m.topic == topic and isinstance(m.item, Packet)]

    @property
    def start(self) -> Nanos:
        """Session start (ns, recorded clock): the recorded base time, else the first log time."""
        base = self.metadata.get("streamkit.recorder", {}).get("base_time_ns")
        if base is not None:
            return int(base)
        return min((m.log_time for m in self.messages), default=0)

    def final_metrics(self) -> MetricsSample | None:
        """The last metrics snapshot, or None."""
        samples = [m.item for m in self.messages if isinstance(m.item, MetricsSample)]
        return samples[-1] if samples else None


def _records(path: Path, state: dict[str, bool]) -> Iterator[Any]:
    with open(path, "rb") as f:
        reader = StreamReader(f, validate_crcs=True)
        it = iter(reader.records)
        while True:
            try:
                record = next(it)
            except StopIteration:
                return
            except (McapError, EOFError, struct.error, zlib.error, ValueError) as error:
                if not state.get("started"):
                    raise ValueError(f"{path}: not a readable MCAP session ({error})") from error
                state["truncated"] = True
                return
            except Exception as error:  # zstd raises its own error types
                if "zstd" not in type(error).__module__.lower():
                    raise
                state["truncated"] = True
                return
            state["started"] = True
            if isinstance(record, Footer):
                state["complete"] = True
            yield record


def iter_messages(
    path: str | Path,
    topics: set[str] | None = None,
    *,
    _state: dict[str, bool] | None = None,
    _metadata: dict[str, dict[str, str]] | None = None,
) -> Iterator[RecordedMessage]:
    """Stream the decoded messages of a session in file order (tolerates a truncated file).

    Raises ``ValueError`` when the file is not an MCAP session at all.
    """
    path = Path(path)
    state = {} if _state is None else _state
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    for record in _records(path, state):
        if isinstance(record, Schema):
            schemas[record.id] = record.name
        elif isinstance(record, Channel):
            channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
        elif isinstance(record, Metadata) and _metadata is not None:
            _metadata[record.name] = dict(record.metadata)
        elif isinstance(record, Message):
            topic, schema = channels[record.channel_id]
            if topics is not None and topic not in topics:
                continue
            yield RecordedMessage(
                topic, schema, record.log_time, record.publish_time,
                decode_message(schema, record.data),
            )


def read_session(path: str | Path, topics: set[str] | None = None) -> Session:
    """Read a whole session (see :func:`iter_messages`)."""
    state: dict[str, bool] = {}
    metadata: dict[str, dict[str, str]] = {}
    messages = list(iter_messages(path, topics, _state=state, _metadata=metadata))
    truncated = state.get("truncated", False) or not state.get("complete", False)
    return Session(Path(path), messages, metadata, truncated=truncated)
