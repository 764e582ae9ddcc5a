"""Replaying a recorded MCAP session as the pipeline's source (ports ``audio`` / ``video``).

Timing: each packet is delivered at its recorded **arrival** time (MCAP ``log_time``)
relative to the session start, so the capture-to-arrival jitter of the recording is reproduced
exactly; ``timing="pts"`` instead delivers each packet when it was fully captured
(``pts + duration``: an ideal, jitter-free device). Packets are restamped onto the running
clock: ``pts' = base_time + (pts - session.start) / speed``.

Pace: on a real clock ``speed=1`` is real time and ``speed=4`` four times faster (the whole
timeline, pts and durations included, is compressed by ``speed``; sample counts are not
changed, so use ``speed=1`` when latencies matter). On a virtual-time loop (looptime,
:func:`streamkit.testing.replay.run_replay`) the same code runs in milliseconds with the
recorded jitter intact. Recorded gaps on a replayed stream are forwarded in band.

The whole session is read in :meth:`ReplaySource.setup` (file I/O; sessions are short).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from mcap.reader import make_reader

from streamkit.core.clock import Nanos
from streamkit.core.packet import Gap, Packet
from streamkit.core.stage import StageContext
from streamkit.record.mcap import Session, read_session

__all__ = ["ReplaySource", "Timing"]

Timing = Literal["arrival", "pts"]

_DEFAULT_TOPICS = {"audio": "/audio", "video": "/video"}


def _summary_topics(path: Path | None) -> set[str] | None:
    """Topics listed in a finished session's summary (cheap), or None when unknown."""
    if path is None or not path.exists():
        return None
    try:
        with open(path, "rb") as f:
            summary = make_reader(f).get_summary()
    except Exception:  # truncated or not MCAP: setup() reports it properly
        return None
    if summary is None:
        return None
    return {channel.topic for channel in summary.channels.values()}


class ReplaySource:
    """Source stage replaying a session (see the module docstring).

    Args:
        session: path of an MCAP session, or a session already read.
        speed: pace factor (> 0); 1 = as recorded.
        timing: ``"arrival"`` (recorded jitter) or ``"pts"`` (ideal capture).
        ports: output port → recorded topic (default ``audio``→``/audio``, ``video``→``/video``).
        name: stage name.
    """

    outputs: tuple[str, ...] = ("audio", "video")
    """Ports this session can feed (those whose topic the session holds, when known)."""

    def __init__(
        self,
        session: str | Path | Session,
        *,
        speed: float = 1.0,
        timing: Timing = "arrival",
        ports: Mapping[str, str] | None = None,
        name: str = "replay",
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        if timing not in ("arrival", "pts"):
            raise ValueError(f"timing must be 'arrival' or 'pts', got {timing!r}")
        self.name = name
        self.speed = speed
        self.timing: Timing = timing
        self.ports = dict(ports or _DEFAULT_TOPICS)
        self.session: Session | None = session if isinstance(session, Session) else None
        self._path = None if isinstance(session, Session) else Path(session)
        self.delivered = 0
        topics = (
            set(self.session.topics()) if self.session is not None else _summary_topics(self._path)
        )
        if topics is not None:  # only the ports the session has (audio-only recordings …)
            self.outputs = tuple(p for p in self.ports if self.ports[p] in topics)

    async def setup(self, ctx: StageContext) -> None:
        if self.session is None:
            assert self._path is not None
            if not self._path.exists():
                raise FileNotFoundError(f"no session file at {self._path}")
            wired = {t for port, t in self.ports.items() if port in ctx.outputs}
            self.session = read_session(self._path, wired | {"/control"})

    def schedule(self) -> list[tuple[Nanos, str, Packet[Any] | Gap]]:
        """(delivery time relative to the session start, port, item), in delivery order."""
        session = self.session
        assert session is not None, "setup() not run"
        port_of = {topic: port for port, topic in self.ports.items()}
        stream_port = {topic.lstrip("/"): port for port, topic in self.ports.items()}
        t0 = session.start
        plan: list[tuple[Nanos, int, str, Packet[Any] | Gap]] = []
        for i, msg in enumerate(session.messages):
            item = msg.item
            if isinstance(item, Packet) and msg.topic in port_of:
                due = msg.log_time if self.timing == "arrival" else item.pts + item.duration
                plan.append((due - t0, i, port_of[msg.topic], item))
            elif isinstance(item, Gap) and item.stream in stream_port:
                plan.append((msg.log_time - t0, i, stream_port[item.stream], item))
        plan.sort(key=lambda p: (p[0], p[1]))
        return [(due, port, item) for due, _, port, item in plan]

    async def run(self, ctx: StageContext) -> None:
        session = self.session
        assert session is not None, "setup() not run"
        t0 = session.start
        base = ctx.base_time
        outs = {port: ctx.output(port) for port in self.ports if ctx.has_output(port)}

        def restamp(t: Nanos) -> Nanos:
            return base + round((t - t0) / self.speed)

        for due, port, item in self.schedule():
            out = outs.get(port)
            if out is None:
                continue
            if ctx.stopping:
                return
            await ctx.clock.sleep_until(base + round(due / self.speed))
            if isinstance(item, Gap):
                await out.put(Gap(item.stream, restamp(item.start), restamp(item.end), item.reason))
                continue
            duration = item.duration if self.speed == 1 else round(item.duration / self.speed)
            await out.put(
                Packet(
                    item.stream,
                    item.seq,
                    restamp(item.pts),
                    duration,
                    item.payload,
                    item.epoch,
                    item.lineage,
                )
            )
            self.delivered += 1
