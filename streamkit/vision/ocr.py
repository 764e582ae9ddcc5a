"""Text in the scene: PP-OCR (det + rec) through ``rapidocr-onnxruntime`` (synchronous, blocking).

Weights: PP-OCRv4 detection and recognition ONNX models that ship inside the PyPI package
``rapidocr-onnxruntime`` (Apache-2.0, RapidAI; the PP-OCR models are PaddleOCR's, Apache-2.0),
run by onnxruntime (MIT) on the CPU — nothing is downloaded. Install with the ``ocr`` extra
(``pip install 'streamkit[ocr]'``); without it :class:`TextReader` raises
:class:`OcrUnavailable` saying so, and the vision encoder runs without OCR.

Cost: the detector runs on the image scaled so its longer side is ``max_side`` (the package's
default *enlarges* small frames to a 736 px shorter side, 3–4× the work), one onnxruntime
thread, no angle classifier: ~100–300 ms for a 640×480 frame on this 2-core machine (more
under load). The vision encoder therefore calls it only on change-gated keyframes, at most
once per ``ocr_interval_ns`` (see :class:`~streamkit.vision.stage.VisionConfig`).

Results are :class:`~streamkit.core.events.Detection` values with ``label="text"``, the recognised
line in ``text``, the recogniser's confidence as ``score`` and the line's bounding box in input
pixels. Lines below ``min_score``, shorter than 2 characters or without a letter or two digits
(single-glyph misreads of textures) are dropped.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.core.events import Detection

__all__ = ["OcrUnavailable", "TextReader"]

Image = npt.NDArray[np.uint8]

_MEANINGFUL = re.compile(r"[A-Za-z]{2}|\d.*\d|[A-Za-z].*\d|\d.*[A-Za-z]")


class OcrUnavailable(RuntimeError):
    """The OCR runtime is not installed; the message says what to install."""


class TextReader:
    """Reads text lines in a BGR image (not thread-safe: one per encoder).

    Args:
        max_side: longer side (px) the detector sees (larger frames are shrunk, smaller
            ones are left as they are).
        min_score: drop lines the recogniser is less sure of (0–1).
        max_lines: keep at most this many lines (the most confident).
        threads: onnxruntime intra-op threads.
    """

    def __init__(
        self, max_side: int = 640, min_score: float = 0.7, max_lines: int = 4, threads: int = 1
    ) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as error:
            raise OcrUnavailable(
                "text reading needs `pip install rapidocr-onnxruntime` (the `ocr` extra)"
            ) from error
        self._engine: Any = RapidOCR(
            det_limit_side_len=max_side,
            det_limit_type="max",
            intra_op_num_threads=threads,
            inter_op_num_threads=1,
            use_cls=False,
        )
        self.min_score = min_score
        self.max_lines = max_lines

    def read(self, image: Image) -> list[Detection]:
        """The most confident text lines of ``image``, in reading order (blocking)."""
        result, _ = self._engine(image, use_cls=False)
        found: list[Detection] = []
        for quad, text, score in result or []:
            line = " ".join(str(text).split())
            if float(score) < self.min_score or len(line) < 2 or not _MEANINGFUL.search(line):
                continue
            points = np.asarray(quad, np.float32).reshape(-1, 2)
            x0, y0 = points.min(axis=0)
            x1, y1 = points.max(axis=0)
            box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
            found.append(Detection("text", round(float(score), 3), box, text=line))
        kept = sorted(found, key=lambda d: -d.score)[: self.max_lines]
        return sorted(kept, key=lambda d: (d.box[1], d.box[0]))  # reading order
