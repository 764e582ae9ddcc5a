"""Decode a whole media file's audio track to 16 kHz mono float32 with PyAV (blocking).

The one loader for tools, benchmarks, clients and tests (``transcribe``, the Python client,
session assembly). The capture source :mod:`streamkit.sources.files` streams the same decode
with real-time pacing and exact container pts; this returns the whole track at once.
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from streamkit.media import ASR_SAMPLE_RATE

__all__ = ["NoAudioTrack", "load_audio"]


class NoAudioTrack(ValueError):
    """The file has no audio stream (or could not be decoded)."""


def load_audio(
    path: str | os.PathLike[str], sample_rate: int = ASR_SAMPLE_RATE
) -> npt.NDArray[np.float32]:
    """All of ``path``'s first audio stream as mono float32 in [-1, 1] at ``sample_rate`` Hz.

    A downmix that exceeds full scale is scaled down to 0.99 peak (not clipped).

    Raises :class:`FileNotFoundError` for a missing file and :class:`NoAudioTrack` when the
    file has no decodable audio.
    """
    import av

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    try:
        container = av.open(path)
    except av.error.FFmpegError as error:
        raise NoAudioTrack(f"{path}: cannot open media: {error}") from error
    with container:
        if not container.streams.audio:
            raise NoAudioTrack(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        parts: list[npt.NDArray[np.float32]] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        except av.error.FFmpegError as error:
            raise NoAudioTrack(f"{path}: audio decode failed: {error}") from error
    if not parts:
        return np.zeros(0, dtype=np.float32)
    audio = np.concatenate(parts).astype(np.float32, copy=False)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 1.0:  # a stereo downmix can exceed full scale: scale, never clip
        audio = (audio * np.float32(0.99 / peak)).astype(np.float32)
    return audio
