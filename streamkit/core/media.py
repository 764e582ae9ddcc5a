"""Media payloads carried in packets: audio chunks and video frames.

Conventions: audio inside the pipeline is mono float32 in [-1, 1] at ``sample_rate`` Hz
(16 kHz after the sources' resampler); video frames are BGR ``uint8`` arrays as OpenCV
produces them. Arrays are owned by the packet that carries them: never mutate a received
payload in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_S, Nanos

__all__ = [
    "ASR_SAMPLE_RATE",
    "AudioChunk",
    "VideoFrame",
    "ns_to_samples",
    "samples_to_ns",
]

ASR_SAMPLE_RATE = 16_000
"""Sample rate (Hz) of audio inside the pipeline."""


def samples_to_ns(n_samples: int, sample_rate: int) -> Nanos:
    """Duration of ``n_samples`` at ``sample_rate`` Hz, in ns (exact integer division)."""
    return n_samples * NS_PER_S // sample_rate


def ns_to_samples(duration: Nanos, sample_rate: int) -> int:
    """Number of whole samples that fit in ``duration`` ns at ``sample_rate`` Hz."""
    return duration * sample_rate // NS_PER_S


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` Hz."""

    samples: npt.NDArray[np.float32]
    sample_rate: int = ASR_SAMPLE_RATE

    @property
    def duration(self) -> Nanos:
        """Covered time span in ns."""
        return samples_to_ns(len(self.samples), self.sample_rate)


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One BGR ``uint8`` image (H×W×3) and where it came from."""

    image: npt.NDArray[np.uint8]
    source: str = ""

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
