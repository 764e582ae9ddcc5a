"""Image types and helpers of the vision encoder (pure, blocking OpenCV calls)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["Grey", "Image", "downscale", "to_grey", "u8"]

Image = npt.NDArray[np.uint8]
"""A BGR uint8 image (H×W×3), as OpenCV produces it."""

Grey = npt.NDArray[np.uint8]
"""A single-channel uint8 image (H×W)."""


def downscale(image: Image | Grey, side: int, *, upscale: bool = False) -> tuple[Image, float]:
    """Resize so the longer side is ``side`` px; returns the image and its scale factor.

    Images already smaller are returned as they are unless ``upscale`` is set (small
    sources, e.g. QCIF video, detect faces better when enlarged). Images over 4× larger are
    first subsampled by striding, which keeps the cost nearly independent of the input size.
    """
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1.0 and not upscale:
        return image, 1.0
    step = int(0.5 / scale)
    if step >= 2:  # much larger: stride first (a view), area-average the rest
        image = image[::step, ::step]
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return u8(cv2.resize(image, size, interpolation=interp)), scale


def u8(array: object) -> Grey:
    """An OpenCV result as a uint8 array (no copy when it already is one)."""
    return np.asarray(array, dtype=np.uint8)


def to_grey(image: Image) -> Grey:
    """``image`` in grey levels (a grey image is returned as it is)."""
    return u8(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)) if image.ndim == 3 else image
