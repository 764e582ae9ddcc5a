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
Colours and brightness are in :mod:`streamkit.vision.colours`; the image helpers
(``Image``, ``downscale``) in :mod:`streamkit.vision.image`.

Boxes are ``(x, y, w, h)`` in pixels of the *input* image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from streamkit.core.events import Detection
from streamkit.vision.image import Grey, Image, downscale, to_grey, u8

__all__ = ["ChangeGate", "FaceDetector", "GateResult", "PeopleDetector", "QrDecoder"]

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
        small = cv2.resize(to_grey(image), (self.width, height), interpolation=cv2.INTER_AREA)
        return u8(cv2.GaussianBlur(small, (3, 3), 0))

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
        grey, scale = downscale(to_grey(image), self.side, upscale=True)
        grey = u8(cv2.equalizeHist(grey))
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
            rotated = u8(cv2.warpAffine(grey, rot, (w, h), borderMode=cv2.BORDER_REPLICATE))
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
        small, scale = downscale(to_grey(image), self.max_side)
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
