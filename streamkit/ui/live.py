"""Live devices for the demo and ``streamkit record``: probe them, combine mic + camera.

:func:`probe_devices` never opens a device for long: it asks PortAudio for input devices and
looks for a camera node (``/dev/video*`` on Linux; elsewhere OpenCV opens index 0 briefly).
:class:`LiveSource` runs the capture engineer's :class:`~streamkit.sources.mic.MicSource` and,
when there is one, the camera source, as one source stage with ports ``audio`` / ``video``.
"""

from __future__ import annotations

import asyncio
import glob
import importlib
import sys
from dataclasses import dataclass
from typing import Any

from streamkit.stage import Stage, StageContext

__all__ = ["Devices", "LiveSource", "probe_devices"]


@dataclass(frozen=True)
class Devices:
    """What capture hardware this machine has."""

    microphones: list[str]
    camera: bool

    @property
    def any(self) -> bool:
        return bool(self.microphones) or self.camera

    def describe(self) -> str:
        mic = self.microphones[0] if self.microphones else "no microphone"
        return f"{mic}; {'camera' if self.camera else 'no camera'}"


def probe_devices() -> Devices:
    """Input devices PortAudio lists and whether a camera is present (quick, no capture)."""
    microphones: list[str] = []
    try:
        from streamkit.sources.mic import list_input_devices

        microphones = list_input_devices()
    except Exception:  # PortAudio missing or no device: no microphone
        microphones = []
    if sys.platform.startswith("linux"):
        camera = bool(glob.glob("/dev/video*"))
    else:  # pragma: no cover - other desktops
        import cv2

        cap = cv2.VideoCapture(0)
        camera = bool(cap.isOpened())
        cap.release()
    return Devices(microphones, camera)


def _camera_stage() -> Stage | None:
    try:
        module: Any = importlib.import_module("streamkit.sources.camera")
    except ImportError:
        return None
    cls = getattr(module, "CameraSource", None)
    return None if cls is None else cls()


class LiveSource:
    """Microphone (+ camera when present) as one source stage (ports ``audio``/``video``)."""

    def __init__(self, devices: Devices, name: str = "live") -> None:
        from streamkit.sources.mic import MicSource

        self.name = name
        self.parts: list[Stage] = []
        if devices.microphones:
            self.parts.append(MicSource(name="mic"))
        camera = _camera_stage() if devices.camera else None
        if camera is not None:
            self.parts.append(camera)
        if not self.parts:
            raise RuntimeError(
                "no capture device: connect a microphone/camera, or run on a recorded session "
                "(`streamkit demo --session FILE`)"
            )
        self.outputs: tuple[str, ...] = ("audio", "video") if camera is not None else ("audio",)

    async def setup(self, ctx: StageContext) -> None:
        for part in self.parts:
            await part.setup(ctx)

    async def run(self, ctx: StageContext) -> None:
        async with asyncio.TaskGroup() as group:
            for part in self.parts:
                group.create_task(part.run(ctx), name=f"{self.name}:{part.name}")
