"""How a frame looks: its brightness, its dominant colour names, and the colour of what a
person wears (the region below and beside a face box). Pure, blocking OpenCV calls on BGR
``uint8`` images; boxes are ``(x, y, w, h)`` in pixels of the input image."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from streamkit.vision.image import Image, downscale, to_grey, u8

__all__ = ["COLOUR_NAMES", "brightness", "clothes_colour", "colour_names"]


def brightness(image: Image) -> float:
    """Mean grey level of ``image`` in 0–1."""
    return float(np.mean(to_grey(image))) / 255.0


_HUES: tuple[tuple[int, str], ...] = (
    (6, "red"),
    (20, "orange"),
    (33, "yellow"),
    (78, "green"),
    (95, "light blue"),
    (130, "blue"),
    (150, "purple"),
    (170, "pink"),
    (180, "red"),
)


def _name_pixels(hsv: npt.NDArray[np.uint8]) -> npt.NDArray[np.int_]:
    """Colour-name index per pixel (see :data:`COLOUR_NAMES`)."""
    h = hsv[..., 0].astype(np.int32)
    s = hsv[..., 1].astype(np.int32)
    v = hsv[..., 2].astype(np.int32)
    hue_idx = np.searchsorted(np.array([b for b, _ in _HUES]), h, side="right")
    hue_idx = np.minimum(hue_idx, len(_HUES) - 1)
    names = hue_idx + 4  # 0 black, 1 white, 2 grey, 3 brown, 4.. hues
    names = np.where((hue_idx == 1) & (v < 150), 3, names)  # dark orange → brown
    names = np.where(s < 45, np.where(v > 190, 1, 2), names)
    names = np.where(v < 50, 0, names)
    return np.asarray(names)


COLOUR_NAMES: tuple[str, ...] = ("black", "white", "grey", "brown", *(n for _, n in _HUES))


def colour_names(image: Image, *, top: int = 3, min_share: float = 0.1) -> list[tuple[str, float]]:
    """Dominant colour names with their share of the image, largest first.

    Each pixel of a 48 px thumbnail is named in HSV (black/white/grey by value and
    saturation, brown for dark orange, else one of eight hue bands); names covering at
    least ``min_share`` of the pixels are returned, at most ``top`` of them.
    """
    small, _ = downscale(image, 48)
    hsv = u8(cv2.cvtColor(small, cv2.COLOR_BGR2HSV))
    idx = _name_pixels(hsv).ravel()
    counts: dict[str, int] = {}
    for i, n in zip(*np.unique(idx, return_counts=True), strict=True):
        name = COLOUR_NAMES[int(i)]
        counts[name] = counts.get(name, 0) + int(n)
    total = float(idx.size)
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return [(name, round(n / total, 3)) for name, n in ranked if n / total >= min_share][:top]


def _skin(bgr: Image) -> npt.NDArray[np.bool_]:
    """Skin-tone pixels (the classic YCrCb box: Cr 135–180, Cb 85–135)."""
    ycrcb = u8(cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb))
    cr, cb = ycrcb[..., 1], ycrcb[..., 2]
    return np.asarray((cr >= 135) & (cr <= 180) & (cb >= 85) & (cb <= 135))


def _background_lab(image: Image) -> npt.NDArray[np.float32]:
    """Mean Lab colour of the two top corner patches (usually background behind a person)."""
    height, width = image.shape[:2]
    ph, pw = max(1, height // 8), max(1, width // 8)
    corners = np.concatenate(
        [image[:ph, :pw].reshape(-1, 3), image[:ph, width - pw :].reshape(-1, 3)]
    ).reshape(-1, 1, 3)
    lab = np.asarray(cv2.cvtColor(u8(corners), cv2.COLOR_BGR2LAB), np.float32)
    return np.asarray(lab.reshape(-1, 3).mean(axis=0), np.float32)


def clothes_colour(
    image: Image, face: tuple[int, int, int, int], *, min_pixels: int = 40
) -> tuple[str, tuple[int, int, int, int]] | None:
    """The colour name of what a person wears: the region below and beside the face box.

    The region spans the shoulders (half a face width either side of the box) from the chin
    (one face height below the box top) down 1.8 face heights, clipped to the image: in a
    head-and-shoulders shot (a webcam, a talking head) the clothes show at the bottom
    corners. Left out: skin-tone pixels (neck, hands) and pixels close to the background
    (within ΔE 18 of the mean colour of the image's top corners). The most common colour
    name of the rest wins. Returns ``(name, region box)``, or ``None`` when the region is
    off the image or fewer than ``min_pixels`` pixels remain.
    """
    height, width = image.shape[:2]
    x, y, w, h = face
    x0, x1 = max(0, x - w // 2), min(width, x + w + w // 2)
    y0, y1 = max(0, y + h), min(height, y + round(2.8 * h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    small, _ = downscale(image[y0:y1, x0:x1], 96)
    lab = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2LAB), np.float32)
    far = np.linalg.norm(lab - _background_lab(image), axis=-1) > 18.0
    keep = far & ~_skin(small)
    if int(np.count_nonzero(keep)) < min_pixels:
        return None
    hsv = u8(cv2.cvtColor(small, cv2.COLOR_BGR2HSV))
    names = _name_pixels(hsv)[keep]
    counts = np.bincount(names.ravel(), minlength=len(COLOUR_NAMES))
    return COLOUR_NAMES[int(np.argmax(counts))], (x0, y0, x1 - x0, y1 - y0)
