"""Synchronous OpenCV building blocks of the vision encoder (pure: no clock, no asyncio).

Everything here is blocking CPU work on BGR ``uint8`` images (OpenCV releases the GIL while
it computes); :mod:`streamkit.vision.stage` runs it through a
:class:`~streamkit.core.compute.ModelSlot`. Weights are the ones that ship with ``opencv-python``
(``cv2.data.haarcascades`` and the built-in HOG people SVM), so nothing is downloaded.

- :class:`ChangeGate`: decides which frames are *keyframes* by comparing a tiny blurred grey
  thumbnail with the last keyframe's (cost: one resize + one absdiff, ~0.1 ms), and measures
  motion energy against the previous frame it saw.
- :class:`FaceDetector`: Haar frontal-face cascade on a ≤ ``side`` px grey image, with a
  stricter pass on the image rotated ±20° when the upright pass finds nothing (tilted heads).
- :class:`PeopleDetector`: HOG + linear SVM pedestrian detector.
- :class:`QrDecoder`: ``cv2.QRCodeDetector`` detect + decode (possibly several codes).
- :func:`brightness`, :func:`colour_names`: global appearance; :func:`clothes_colour`: the
  colour of what a person wears (the region below and beside a face box).

Boxes are ``(x, y, w, h)`` in pixels of the *input* image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from streamkit.core.events import Detection

__all__ = [
    "COLOUR_NAMES",
    "ChangeGate",
    "FaceDetector",
    "GateResult",
    "Grey",
    "Image",
    "PeopleDetector",
    "QrDecoder",
    "brightness",
    "clothes_colour",
    "colour_names",
    "downscale",
]

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
    return _u8(cv2.resize(image, size, interpolation=interp)), scale


def _u8(array: object) -> Grey:
    """An OpenCV result as a uint8 array (no copy when it already is one)."""
    return np.asarray(array, dtype=np.uint8)


def _grey(image: Image) -> Grey:
    return _u8(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)) if image.ndim == 3 else image


# -- change gate ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GateResult:
    """What the gate decided for one frame.

    Attributes:
        keyframe: the frame differs enough from the last keyframe (or is the first).
        change: fraction of thumbnail pixels (0–1) that differ from the last keyframe's.
        motion: fraction of thumbnail pixels (0–1) that differ from the previous frame's.
    """

    keyframe: bool
    change: float
    motion: float


class ChangeGate:
    """Keyframe selection by frame difference on a tiny grey thumbnail (stateful, pure).

    A pixel "differs" when its grey level moved by more than ``pixel_threshold`` (0–255)
    after a 3×3 blur; a frame is a keyframe when more than ``change_threshold`` of the
    pixels differ from the last keyframe, so slow drift accumulates into a keyframe too.
    A change of frame size always makes a keyframe. Identical frames never do.

    Args:
        width: thumbnail width in px (height keeps the aspect ratio).
        pixel_threshold: grey-level difference that counts as a change.
        change_threshold: fraction of changed pixels that makes a keyframe.
    """

    def __init__(
        self, width: int = 96, pixel_threshold: int = 20, change_threshold: float = 0.08
    ) -> None:
        self.width = width
        self.pixel_threshold = pixel_threshold
        self.change_threshold = change_threshold
        self._key: Grey | None = None
        self._prev: Grey | None = None
        self._shape: tuple[int, ...] | None = None

    def thumbnail(self, image: Image) -> Grey:
        """The blurred grey thumbnail the gate compares (``width`` px wide).

        Large frames are first subsampled by striding (a view, no copy) to ≤ 4× the
        thumbnail width, so the gate's cost hardly grows with the frame size.
        """
        h, w = image.shape[:2]
        step = max(1, w // (4 * self.width))
        if step > 1:
            image = image[::step, ::step]
        height = max(1, round(h * self.width / w))
        small = cv2.resize(_grey(image), (self.width, height), interpolation=cv2.INTER_AREA)
        return _u8(cv2.GaussianBlur(small, (3, 3), 0))

    def _diff(self, a: Grey, b: Grey) -> float:
        return float(np.count_nonzero(cv2.absdiff(a, b) > self.pixel_threshold)) / a.size

    def update(self, image: Image) -> GateResult:
        """Look at one frame; remember it (and it as the keyframe when it is one)."""
        thumb = self.thumbnail(image)
        if self._key is None or self._prev is None or image.shape != self._shape:
            self._key = self._prev = thumb
            self._shape = image.shape
            return GateResult(True, 1.0, 0.0)
        motion = self._diff(thumb, self._prev)
        change = self._diff(thumb, self._key)
        self._prev = thumb
        keyframe = change > self.change_threshold
        if keyframe:
            self._key = thumb
        return GateResult(keyframe, change, motion)

    def force_next(self) -> None:
        """Make the next frame a keyframe (e.g. a periodic refresh or after a flush)."""
        self._key = None


# -- detectors --------------------------------------------------------------------------


class FaceDetector:
    """Haar cascade faces (``haarcascade_frontalface_alt2``, ships with OpenCV).

    The grey image is scaled so its longer side is ``side`` px (small frames are enlarged)
    and histogram-equalised. When the upright pass finds nothing, the image is rotated by
    each angle in ``tilt_angles`` and searched again with the stricter ``tilt_neighbors``
    (rotated passes find tilted heads but also more false positives); they run at
    ``tilt_side`` px (tilted heads close to a camera are large), ~30 % cheaper.
    ``scale_factor`` is the cascade's pyramid step (1.2 trades a little recall for ~2× the
    speed of 1.1). Detections are in input-image pixels; ``score`` is a fixed confidence
    per pass (0.9 upright, 0.7 tilted): Haar cascades give no calibrated probability.
    """

    def __init__(
        self,
        side: int = 320,
        min_neighbors: int = 5,
        tilt_angles: tuple[float, ...] = (20.0, -20.0),
        tilt_neighbors: int = 8,
        tilt_side: int = 240,
        min_size: int = 24,
        scale_factor: float = 1.2,
        tilt_scale_factor: float = 1.25,
    ) -> None:
        path = str(cv2.data.haarcascades) + "haarcascade_frontalface_alt2.xml"  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"could not load the OpenCV face cascade from {path}")
        self.side = side
        self.min_neighbors = min_neighbors
        self.tilt_angles = tilt_angles
        self.tilt_neighbors = tilt_neighbors
        self.tilt_side = tilt_side
        self.min_size = min_size
        self.scale_factor = scale_factor
        self.tilt_scale_factor = tilt_scale_factor

    def _run(self, grey: Grey, neighbors: int, factor: float) -> list[tuple[int, int, int, int]]:
        rects = self._cascade.detectMultiScale(
            grey,
            scaleFactor=factor,
            minNeighbors=neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [(int(x), int(y), int(w), int(h)) for x, y, w, h in rects]

    def detect(self, image: Image) -> list[Detection]:
        """Faces in ``image`` (BGR or grey)."""
        grey, scale = downscale(_grey(image), self.side, upscale=True)
        grey = _u8(cv2.equalizeHist(grey))
        found = self._run(grey, self.min_neighbors, self.scale_factor)
        if found:
            return [_scaled("face", 0.9, box, scale) for box in found]
        if not self.tilt_angles:
            return []
        grey, shrink = downscale(grey, self.tilt_side)
        h, w = grey.shape
        centre = (w / 2.0, h / 2.0)
        for angle in self.tilt_angles:
            rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
            rotated = _u8(cv2.warpAffine(grey, rot, (w, h), borderMode=cv2.BORDER_REPLICATE))
            found = self._run(rotated, self.tilt_neighbors, self.tilt_scale_factor)
            if found:
                back = np.asarray(cv2.invertAffineTransform(rot), np.float64)
                boxes = [_unrotate(box, back) for box in found]
                return [_scaled("face", 0.7, box, scale * shrink) for box in boxes]
        return []


def _unrotate(
    box: tuple[int, int, int, int], back: npt.NDArray[np.float64]
) -> tuple[int, int, int, int]:
    """Map a box found in a rotated image back: same size, centre moved by ``back``."""
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    ox = back[0, 0] * cx + back[0, 1] * cy + back[0, 2]
    oy = back[1, 0] * cx + back[1, 1] * cy + back[1, 2]
    return (round(ox - w / 2.0), round(oy - h / 2.0), w, h)


def _scaled(label: str, score: float, box: tuple[int, int, int, int], scale: float) -> Detection:
    x, y, w, h = box
    inv = 1.0 / scale
    return Detection(
        label=label,
        score=score,
        box=(round(x * inv), round(y * inv), round(w * inv), round(h * inv)),
    )


class PeopleDetector:
    """Standing people: OpenCV's HOG descriptor with its built-in pedestrian SVM.

    Runs on the image scaled to ≤ ``side`` px (a person must be ≥ ~128 px tall there).
    Detections whose SVM margin is below ``min_score`` are dropped, overlapping ones are
    merged by non-maximum suppression. ``score`` is the SVM margin squashed to 0–1.
    """

    def __init__(self, side: int = 320, min_score: float = 0.5) -> None:
        self._hog = cv2.HOGDescriptor()
        svm = np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32)
        self._hog.setSVMDetector(svm)
        self.side = side
        self.min_score = min_score

    def detect(self, image: Image) -> list[Detection]:
        small, scale = downscale(image, self.side)
        if min(small.shape[:2]) < 128:
            return []
        rects, weights = self._hog.detectMultiScale(
            small, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        scores = [float(w) for w in np.ravel(weights)]
        boxes = [tuple(int(v) for v in r) for r in rects]
        keep = [i for i, s in enumerate(scores) if s >= self.min_score]
        if not keep:
            return []
        picked = cv2.dnn.NMSBoxes(
            [list(boxes[i]) for i in keep], [scores[i] for i in keep], self.min_score, 0.4
        )
        out: list[Detection] = []
        for j in np.ravel(picked):
            i = keep[int(j)]
            x, y, w, h = boxes[i]
            score = 1.0 - float(np.exp(-scores[i]))
            out.append(_scaled("person", round(score, 3), (x, y, w, h), scale))
        return out


class QrDecoder:
    """QR codes: ``cv2.QRCodeDetector`` locates and decodes every code in the image.

    Decoding needs resolution but the search cost grows with it: the image is shrunk so its
    longer side is at most ``max_side`` (640 px decodes a code covering ~1/5 of the frame
    and costs ~4× less than 1280). Codes are located with the multi-code search; when it
    locates codes but decodes none, the single-code decoder gets a second try. A code that
    is located but cannot be decoded is reported with empty text and score 0.5.
    """

    def __init__(self, max_side: int = 640) -> None:
        self._qr = cv2.QRCodeDetector()
        self.max_side = max_side

    def detect(self, image: Image) -> list[Detection]:
        small, scale = downscale(_grey(image), self.max_side)
        found: list[tuple[str, npt.NDArray[np.float32]]] = []
        try:
            located, points = self._qr.detectMulti(small)
            if not located or points is None:
                return []
            _ok, texts, _ = self._qr.decodeMulti(small, points)
            quads = [np.asarray(q, np.float32).reshape(-1, 2) for q in points]
            found = [(str(t), q) for t, q in zip(texts, quads, strict=False)]
            if not any(text for text, _ in found):
                text, quad, _ = self._qr.detectAndDecode(small)
                if text and quad is not None:
                    found = [(str(text), np.asarray(quad, np.float32).reshape(-1, 2))]
                elif not found:
                    found = [("", q) for q in quads]
        except cv2.error:
            return []
        out: list[Detection] = []
        for text, quad in found:
            x, y, w, h = cv2.boundingRect(quad)
            det = _scaled("qr", 1.0 if text else 0.5, (x, y, w, h), scale)
            out.append(Detection(det.label, det.score, det.box, text=text))
        return out


# -- appearance -------------------------------------------------------------------------


def brightness(image: Image) -> float:
    """Mean grey level of ``image`` in 0–1."""
    return float(np.mean(_grey(image))) / 255.0


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
    hsv = _u8(cv2.cvtColor(small, cv2.COLOR_BGR2HSV))
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
    ycrcb = _u8(cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb))
    cr, cb = ycrcb[..., 1], ycrcb[..., 2]
    return np.asarray((cr >= 135) & (cr <= 180) & (cb >= 85) & (cb <= 135))


def _background_lab(image: Image) -> npt.NDArray[np.float32]:
    """Mean Lab colour of the two top corner patches (usually background behind a person)."""
    height, width = image.shape[:2]
    ph, pw = max(1, height // 8), max(1, width // 8)
    corners = np.concatenate(
        [image[:ph, :pw].reshape(-1, 3), image[:ph, width - pw :].reshape(-1, 3)]
    ).reshape(-1, 1, 3)
    lab = np.asarray(cv2.cvtColor(_u8(corners), cv2.COLOR_BGR2LAB), np.float32)
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
    hsv = _u8(cv2.cvtColor(small, cv2.COLOR_BGR2HSV))
    names = _name_pixels(hsv)[keep]
    counts = np.bincount(names.ravel(), minlength=len(COLOUR_NAMES))
    return COLOUR_NAMES[int(np.argmax(counts))], (x0, y0, x1 - x0, y1 - y0)
