"""Decode a whole media file's audio track to 16 kHz mono float32 with PyAV (blocking).

The one loader for tools, benchmarks, clients and tests (``transcribe``, the Python client,
session assembly). The capture source :mod:`streamkit.sources.files` streams the same decode
with real-time pacing and exact container pts; this returns the whole track at once.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.core.media import ASR_SAMPLE_RATE

__all__ = ["NoAudioTrack", "has_video", "load_audio", "load_video_jpegs"]


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


def has_video(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` opens and has a video stream (a still image counts as none)."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams.video[0] if container.streams.video else None
            return stream is not None and (stream.frames or 0) != 1
    except (av.error.FFmpegError, OSError):
        return False


def load_video_jpegs(
    path: str | os.PathLike[str], max_fps: float = 5.0, max_width: int = 640, quality: int = 70
) -> list[tuple[int, bytes]]:
    """``(container time ns from the first frame, JPEG bytes)`` of ``path``'s first video
    stream, at most ``max_fps`` frames per second (later frames of a slot are skipped),
    scaled down to ``max_width`` pixels. Empty when the file has no video (blocking)."""
    import av
    import cv2

    from streamkit.sources.files import tb_to_ns

    out: list[tuple[int, bytes]] = []
    step = round(1e9 / max_fps) if max_fps > 0 else 0
    with av.open(os.fspath(path)) as container:
        if not container.streams.video:
            return out
        stream = container.streams.video[0]
        first: int | None = None
        next_slot = 0
        for frame in container.decode(stream):
            if frame.pts is None or stream.time_base is None:
                continue
            t = tb_to_ns(frame.pts, stream.time_base)
            first = t if first is None else first
            t -= first
            if t < next_slot:
                continue
            next_slot = t + step
            image: npt.NDArray[Any] = frame.to_ndarray(format="bgr24")
            if image.shape[1] > max_width:
                height = round(image.shape[0] * max_width / image.shape[1])
                image = cv2.resize(image, (max_width, height), interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                out.append((t, jpeg.tobytes()))
    return out
