"""Camera source (OpenCV ``VideoCapture``: device index, video file or stream URL).

Threads and ownership: a worker thread (``asyncio.to_thread`` inside the stage's TaskGroup)
owns the ``VideoCapture``: it calls ``grab()`` (blocking), reads the shared clock right after
it returns (``loop.time()``, thread-safe for a real loop) — that is the frame's pts, its
capture time on the shared clock — then ``retrieve()`` and puts the frame into a one-slot
*latest* buffer. If the loop has not taken the previous frame yet, that frame is replaced and
counted as dropped (a stale frame is worthless). The loop side takes the newest frame and puts
a ``Packet[VideoFrame]`` (duration 0: an instant) on port ``"video"``; ``seq`` counts grabs,
so a hole in ``seq`` is a drop.

A camera that cannot be opened or stops delivering frames is not a crash: an
:class:`~streamkit.core.events.ErrorEvent` (``camera_unavailable`` / ``camera_lost``) goes to the
optional ``"events"`` port and to the metrics, the capture is released, and it is reopened
after ``retry_ns`` (``max_retries`` bounds consecutive failures; then :class:`CameraError`
says what to pass). A video file used as a camera is paced at its frame rate (or ``fps``) and
ends the stream at its end (``loop_file=True`` replays it instead).

Metrics (``source.<name>.*``): ``frames`` (grabbed), ``dropped``, ``reconnects``,
``errors`` counters and the measured ``fps`` gauge (over the last 30 grabs).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamkit.core.clock import NS_PER_S, LoopClock, Nanos
from streamkit.core.events import ErrorEvent
from streamkit.core.media import VideoFrame
from streamkit.core.packet import Packet
from streamkit.core.stage import StageContext

__all__ = ["CameraError", "CameraSource"]


class CameraError(RuntimeError):
    """The camera could not be opened at all; the message says what to pass."""


class CameraSource:
    """Live camera (or a video file standing in for one) → port ``"video"``.

    Args:
        source: device index (``0``), video file path or stream URL.
        fps: pace a *file* at this rate (default: the file's own rate); ignored for devices.
        retry_ns: wait before reopening a lost camera (shared-clock ns).
        max_retries: consecutive failed opens before giving up (None: retry forever).
        loop_file: replay a file at its end instead of ending the stream.
        opener: factory for the capture (default ``cv2.VideoCapture``; tests inject faults).
        name: stage name.
    """

    outputs: tuple[str, ...] = ("video",)

    def __init__(
        self,
        source: int | str | Path = 0,
        *,
        fps: float | None = None,
        retry_ns: Nanos = NS_PER_S,
        max_retries: int | None = None,
        loop_file: bool = False,
        opener: Callable[[Any], Any] | None = None,
        name: str = "camera",
    ) -> None:
        self.source: int | str = source if isinstance(source, int) else str(source)
        self.is_file = isinstance(self.source, str) and Path(self.source).is_file()
        self.fps_override = fps
        self.retry_ns = retry_ns
        self.max_retries = max_retries
        self.loop_file = loop_file
        self.opener: Callable[[Any], Any] = opener if opener is not None else cv2.VideoCapture
        self.name = name
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0
        self.errors: list[ErrorEvent] = []
        self.measured_fps = 0.0
        self.metadata: dict[str, Any] = {
            "kind": "camera",
            "source": self.source,
            "pts_method": "grab_time",
        }
        self._lock = threading.Lock()
        self._slot: tuple[int, Nanos, np.ndarray] | None = None
        self._pending_events: deque[ErrorEvent] = deque(maxlen=64)
        self._stop = threading.Event()
        self._wake = asyncio.Event()
        self._done = False
        self._failure: CameraError | None = None
        self._grab_times: deque[Nanos] = deque(maxlen=30)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def setup(self, ctx: StageContext) -> None:
        if not isinstance(ctx.clock, LoopClock):
            raise CameraError(
                "CameraSource stamps frames with the event loop's clock (loop.time()); run the "
                f"pipeline on LoopClock (the default), not {type(ctx.clock).__name__}"
            )
        self._loop = asyncio.get_running_loop()

    async def run(self, ctx: StageContext) -> None:
        self._stop.clear()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(asyncio.to_thread(self._grab_loop), name=f"{self.name}:grab")
                group.create_task(self._deliver(ctx), name=f"{self.name}:deliver")
        finally:
            self._stop.set()
        if self._failure is not None:
            raise self._failure

    # -- loop side -----------------------------------------------------------------------

    async def _deliver(self, ctx: StageContext) -> None:
        prefix = f"source.{self.name}"
        metrics = ctx.metrics
        delivered_seq = -1
        while True:
            await ctx.wait_or_stopping(self._wake)
            self._wake.clear()
            if ctx.stopping:
                self._stop.set()
            while self._pending_events:
                event = self._pending_events.popleft()
                metrics.counter(f"{prefix}.errors").inc()
                if ctx.has_output("events"):
                    now = ctx.clock.now()
                    await ctx.output("events").put(Packet("error", len(self.errors), now, 0, event))
            with self._lock:
                slot, self._slot = self._slot, None
            if slot is not None and slot[0] > delivered_seq:
                seq, pts, image = slot
                delivered_seq = seq
                frame = VideoFrame(image, source=str(self.source))
                await ctx.output("video").put(Packet("video", seq, pts, 0, frame))
            metrics.counter(f"{prefix}.frames").value = self.frames
            metrics.counter(f"{prefix}.dropped").value = self.dropped
            metrics.counter(f"{prefix}.reconnects").value = self.reconnects
            metrics.gauge(f"{prefix}.fps").set(self.measured_fps)
            if self._stop.is_set() or self._done:
                with self._lock:
                    if self._slot is None and not self._pending_events:
                        return

    def _notify(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                loop.call_soon_threadsafe(self._wake.set)

    # -- capture thread ------------------------------------------------------------------

    def _now(self) -> Nanos:
        assert self._loop is not None
        return round(self._loop.time() * NS_PER_S)

    def _event(self, code: str, message: str) -> None:
        event = ErrorEvent(code=code, message=message)
        self.errors.append(event)
        self._pending_events.append(event)
        self._notify()

    def _grab_loop(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                cap = self.opener(self.source)
                if not cap.isOpened():
                    cap.release()
                    failures += 1
                    if self.max_retries is not None and failures > self.max_retries:
                        self._failure = CameraError(
                            f"cannot open camera {self.source!r} after {failures} tries. Pass "
                            "--camera <device index | video file | URL>; for a device check "
                            "that /dev/video* exists and is readable"
                        )
                        return
                    self._event("camera_unavailable", f"cannot open camera {self.source!r}")
                    self._stop.wait(self.retry_ns / NS_PER_S)
                    continue
                if failures or self.frames:
                    self.reconnects += 1
                failures = 0
                ended = self._capture(cap)
                cap.release()
                if ended:
                    return
                self._event("camera_lost", f"camera {self.source!r} stopped delivering frames")
                self._stop.wait(self.retry_ns / NS_PER_S)
        finally:
            self._done = True
            self._notify()

    def _capture(self, cap: Any) -> bool:
        """Grab until stopped or failing; True when the stream ended for good (file end)."""
        fps = self.fps_override or (float(cap.get(cv2.CAP_PROP_FPS)) if self.is_file else 0.0)
        period = round(NS_PER_S / fps) if self.is_file and fps > 0 else 0
        start = self._now()
        ticks = 0
        while not self._stop.is_set():
            if period:
                delay = start + ticks * period - self._now()
                if delay > 0 and self._stop.wait(delay / NS_PER_S):
                    return True
                ticks += 1
            if not cap.grab():
                if self.is_file and not self.loop_file:
                    return True
                if self.is_file:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                return False
            pts = self._now()
            ok, image = cap.retrieve()
            if not ok or image is None:
                return False
            self._grab_times.append(pts)
            if len(self._grab_times) > 1:
                span = self._grab_times[-1] - self._grab_times[0]
                self.measured_fps = (len(self._grab_times) - 1) * NS_PER_S / max(span, 1)
            with self._lock:
                if self._slot is not None:
                    self.dropped += 1
                self._slot = (self.frames, pts, image)
                self.frames += 1
            self._notify()
        return True

