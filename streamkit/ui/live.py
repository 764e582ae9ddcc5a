"""Live devices for the demo and ``streamkit record``: probe them, combine mic + camera.

:func:`probe_devices` never opens a device for long: it asks PortAudio for input devices and
looks for a camera node (``/dev/video*`` on Linux; elsewhere OpenCV opens index 0 briefly).
:func:`live_source` combines :class:`~streamkit.sources.mic.MicSource` and, when there is one,
:class:`~streamkit.sources.camera.CameraSource` into one source stage (ports ``audio`` /
``video``) with :class:`~streamkit.sources.combine.CombinedSource`.
"""

from __future__ import annotations

import glob
import sys
from dataclasses import dataclass

from streamkit.core.stage import Source

__all__ = ["Devices", "live_source", "probe_devices"]


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


def live_source(devices: Devices) -> Source:
    """The microphone (+ camera when present) as one source stage (ports audio/video)."""
    from streamkit.sources.combine import CombinedSource

    parts: list[Source] = []
    if devices.microphones:
        from streamkit.sources.mic import MicSource

        parts.append(MicSource(name="mic"))
    if devices.camera:
        from streamkit.sources.camera import CameraSource

        parts.append(CameraSource(0, name="camera"))
    if not parts:
        raise RuntimeError(
            "no capture device: connect a microphone/camera, or run on a recorded session "
            "(`streamkit demo --session FILE`)"
        )
    return CombinedSource(*parts, name="live")
