"""Source stages: microphone, camera, media files, replayed sessions (ports "audio"/"video").

Imported lazily (``from streamkit.sources import MicSource``) so that importing the package
does not load PortAudio, OpenCV or PyAV until a source is actually used.

- :class:`~streamkit.sources.mic.MicSource`: sounddevice capture, ADC time → shared clock.
- :class:`~streamkit.sources.camera.CameraSource`: OpenCV capture, stamped at grab.
- :class:`~streamkit.sources.files.FileSource`: audio/video files, container pts kept.
- :class:`~streamkit.sources.replay.ReplaySource`: a recorded MCAP session.
- :class:`~streamkit.sources.combine.CombinedSource`: e.g. mic + camera as one source.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamkit.sources.camera import CameraSource
    from streamkit.sources.combine import CombinedSource
    from streamkit.sources.files import FileSource
    from streamkit.sources.mic import MicSource
    from streamkit.sources.replay import ReplaySource

__all__ = ["CameraSource", "CombinedSource", "FileSource", "MicSource", "ReplaySource"]

_MODULES = {
    "CameraSource": "streamkit.sources.camera",
    "CombinedSource": "streamkit.sources.combine",
    "FileSource": "streamkit.sources.files",
    "MicSource": "streamkit.sources.mic",
    "ReplaySource": "streamkit.sources.replay",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'streamkit.sources' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
