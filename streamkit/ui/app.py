"""The desktop demo: source → best pipeline → views, with mute, record and a latency summary.

Source: live devices when present (``live="auto"``), else the bundled real session replayed
at real-time pace (or ``session`` when given). Pipeline: :func:`streamkit.ui.pipelines.
load_pipeline` (the full assistant when installed). View: the OpenCV window when a display
exists (keys ``q`` quit, ``m`` mute the microphone, ``r`` start/stop recording into an MCAP
session), else a rich live terminal view; both show the same :class:`DemoState`. At the end a
latency summary (per stage p50/p95, end to end, per-utterance lineage) is printed.

Everything runs in one ``asyncio.TaskGroup``: the pipeline and the view loop (~30 fps on the
shared clock). Model loading happens before the loop starts (blocking, seconds).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Clock, LoopClock
from streamkit.core.media import AudioChunk
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.packet import Packet
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Source
from streamkit.record.mcap import SessionWriter, default_session_path
from streamkit.sources.replay import ReplaySource
from streamkit.ui.live import live_source, probe_devices
from streamkit.ui.pipelines import LoadedPipeline, load_pipeline, speed_problem
from streamkit.ui.render import render
from streamkit.ui.state import DemoState
from streamkit.ui.summary import latency_table, lineage_rows
from streamkit.ui.tap import CallbackSink, TappedSource
from streamkit.ui.terminal import TerminalView
from streamkit.ui.window import WindowView, display_available

__all__ = ["DemoApp", "DemoOptions", "run_demo"]


@dataclass
class DemoOptions:
    """How to run the demo (see ``streamkit demo --help``)."""

    session: Path | None = None
    live: str = "auto"  # auto | yes | no
    pipeline: str = "best"
    window: str = "auto"  # auto | yes | no
    speed: float = 1.0
    snapshot: Path | None = None
    linger: float | None = None
    max_seconds: float | None = None
    record_dir: Path = Path(".")
    assistant: Any = None  # AssistantConfig (models to use); None → bundled defaults


class DemoApp:
    """One demo run: owns the state, the optional recording and the views."""

    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console()
        self.state = DemoState()
        self.metrics = MetricsRegistry()
        self.writer: SessionWriter | None = None
        self.recordings: list[Path] = []
        self.pipeline: Pipeline | None = None
        self._clock: Clock = LoopClock()
        self.speaker: Any = None  # plays the spoken answer (transport.speaker.AnswerAudio)

    # -- source ----------------------------------------------------------------------------

    def make_source(self) -> Source:
        opts = self.options
        if opts.session is None and opts.live != "no":
            devices = probe_devices()
            if devices.any:
                self.state.source_label = f"live: {devices.describe()}"
                return live_source(devices)
            if opts.live == "yes":
                raise RuntimeError(
                    "no microphone or camera found: install PortAudio (`apt install "
                    "libportaudio2`) and connect a device, or drop --live to use the bundled "
                    "session"
                )
            self.console.print("[dim]no microphone/camera found → replaying the bundled "
                               "session (use --live yes to require devices)[/]")
        session = opts.session or default_session_path()
        if not session.exists():
            raise FileNotFoundError(f"no session file at {session}")
        self.state.source_label = f"replay: {session.name}" + (
            f" ×{opts.speed:g}" if opts.speed != 1 else ""
        )
        return ReplaySource(session, speed=opts.speed)

    # -- taps ------------------------------------------------------------------------------

    def _tap(self, port: str, packet: Packet[Any]) -> Packet[Any] | None:
        if self.state.muted and isinstance(packet.payload, AudioChunk):
            silent = AudioChunk(np.zeros_like(packet.payload.samples), packet.payload.sample_rate)
            packet = packet.derive(silent)
        self.state.on_media(packet)
        if self.writer is not None:
            self.writer.write_packet(packet, self._clock.now())
        return packet

    def _speak(self, payload: Any, now: int) -> None:
        """The spoken answer to the output device (sounddevice); no device: text only, and
        one line says so."""
        from streamkit.core.events import ResponseAudio, ResponseAudioDone
        from streamkit.tts.backend import pcm16_samples

        if isinstance(payload, ResponseAudio):
            if self.speaker is None:
                from streamkit.transport.speaker import AnswerAudio

                self.speaker = AnswerAudio(play=True)
            self.speaker.add(payload.response_id, payload.pts, payload.sample_rate,
                             pcm16_samples(payload.pcm), now)
        elif isinstance(payload, ResponseAudioDone) and self.speaker is not None:
            self.speaker.on_event(payload, now)

    def _on_item(self, now: int, item: Any) -> None:
        if isinstance(item, Packet):
            self._speak(item.payload, now)
            self.state.on_event(item, now)
            if self.writer is not None:
                self.writer.write_packet(item, now)

    def toggle_recording(self) -> None:
        if self.writer is None:
            index = len(self.recordings) + 1
            path = self.options.record_dir / f"streamkit-demo-{index}.mcap"
            self.writer = SessionWriter(path, metadata={"source": self.state.source_label})
            base = self.pipeline.state.base_time if self.pipeline else None
            self.writer.add_metadata("streamkit.recorder",
                                     {"base_time_ns": str(base if base is not None else 0)})
            self.recordings.append(path)
            self.state.recording = True
        else:
            self.writer.write_metrics(self.metrics, self._clock.now(), samples=True)
            self.writer.close()
            self.writer = None
            self.state.recording = False

    def key(self, key: str | None) -> bool:
        """Handle a key; False means quit."""
        if key in ("q", "\x1b"):
            return False
        if key == "m":
            self.state.muted = not self.state.muted
        elif key == "d":
            self.state.details = not self.state.details
        elif key == "r":
            self.toggle_recording()
        return True

    # -- run -------------------------------------------------------------------------------

    async def run(self, loaded: LoadedPipeline) -> int:
        if self.options.window == "yes" and not display_available():
            raise RuntimeError("no display for the window: set DISPLAY (or run under Xvfb), "
                               "or use --window no for the terminal view")
        self._clock = LoopClock()
        source = TappedSource(self.make_source(), self._tap)
        sink = CallbackSink(self._on_item, name="demo")
        pipe, _controls = loaded.factory(source, sink, self.metrics)
        self.pipeline = pipe
        self.state.title = f"streamkit demo · {loaded.kind}"
        use_window = self.options.window == "yes" or (
            self.options.window == "auto" and display_available()
        )
        done = asyncio.Event()

        async def run_pipeline() -> None:
            try:
                await pipe.run()
            finally:
                done.set()

        async with asyncio.TaskGroup() as group:
            group.create_task(run_pipeline(), name="demo:pipeline")
            group.create_task(self._view(use_window, done), name="demo:view")
        if self.writer is not None:
            self.toggle_recording()
        if self.speaker is not None:
            self.speaker.close()
        self._summary()
        return 0

    async def _view(self, use_window: bool, done: asyncio.Event) -> None:
        clock = self._clock
        window = WindowView() if use_window else None
        terminal = None if use_window else TerminalView(self.state, self.console)
        if window is not None:
            window.open()
        elif terminal is not None:
            terminal.start()
        started = clock.now()
        last_metrics = 0
        finished_at: int | None = None
        frame: np.ndarray[Any, Any] | None = None
        linger = self.options.linger
        if linger is None:  # a window someone may look at stays until q; a script's exits
            linger = 3600.0 if window is not None and sys.stdin.isatty() else 0.0
        try:
            while True:
                now = clock.now()
                if now - last_metrics >= 250 * NS_PER_MS or done.is_set():
                    self.state.set_metrics(self.metrics.snapshot())
                    last_metrics = now
                limit = self.options.max_seconds
                if limit is not None and now - started > limit * NS_PER_S and self.pipeline:
                    self.pipeline.drain()
                if done.is_set() and finished_at is None:
                    finished_at = now
                    self.state.finished = True
                    self.state.finished_note = "finished"
                    frame = render(self.state)
                    if self.options.snapshot is not None:
                        _write_image(self.options.snapshot, frame)
                        self.console.print(f"snapshot → {self.options.snapshot}")
                if window is not None:
                    window.show(frame if frame is not None else render(self.state))
                    key = window.poll(1)
                    if not self.key(key) or window.closed_by_user():
                        if self.pipeline is not None and not done.is_set():
                            self.pipeline.abort()
                        await done.wait()
                        return
                elif terminal is not None:
                    terminal.update()
                if finished_at is not None and now - finished_at >= linger * NS_PER_S:
                    return
                # finished: the frame is drawn once; only keys are read, ~10 times a second
                await clock.sleep((100 if finished_at is not None else 33) * NS_PER_MS)
        finally:
            if window is not None:
                window.close()
            if terminal is not None:
                terminal.stop()

    def _summary(self) -> None:
        snapshot = self.metrics.snapshot()
        self.console.print(latency_table(snapshot, title="latency summary (ms)"))
        for uid, events in lineage_rows(snapshot["lineage"]):
            self.console.print(f"  {uid}: " + " → ".join(f"{ev} {ms:.0f}" for ev, ms in events))
        for path in self.recordings:
            self.console.print(f"recorded → {path}")


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    """Load the pipeline (blocking), then run the demo on a fresh event loop."""
    console = console or Console()
    loaded = load_pipeline(options.pipeline, config=options.assistant)
    problem = speed_problem(loaded.kind, options.speed)
    if problem is not None:
        raise RuntimeError(problem)
    console.print(f"pipeline: [bold]{loaded.kind}[/] — {loaded.note}")
    app = DemoApp(options, console)
    try:
        return asyncio.run(app.run(loaded))
    except KeyboardInterrupt:
        console.print("interrupted")
        if app.writer is not None:
            app.toggle_recording()
        app._summary()
        return 130


def _write_image(path: Path, image: Any) -> None:
    """Write ``image`` to ``path`` atomically: whoever watches for the file never reads a
    half-written one (the PNG goes to a sibling first, then is renamed over ``path``)."""
    part = path.with_name(f".{path.stem}.part{path.suffix}")
    cv2.imwrite(str(part), image)
    part.replace(path)
