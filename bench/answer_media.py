"""Camera input of ``bench/answers.py``: a case's media as ``(offset ns, JPEG)`` frames.

Photos are sent as they are (≤ 640 px), clips at ``FPS`` frames a second of the clip, and
``composite:*`` media are real frames with a printed card or a QR code pasted in (rendered by
``tests/vision/_media.py`` from ``tests/data``: the data set has no real text in view).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import NS_PER_S

__all__ = ["FPS", "media_frames"]

FPS = 5


def _jpeg(image: npt.NDArray[np.uint8], quality: int = 80) -> bytes:
    import cv2

    h, w = image.shape[:2]
    if max(h, w) > 640:
        scale = 640 / max(h, w)
        image = cv2.resize(
            image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    assert ok
    return bytes(buf.tobytes())


def media_frames(media: str, data: Path) -> list[tuple[int, bytes]]:
    """``(offset ns, JPEG)`` frames of a case's camera (see ``bench/answer_cases.py``;
    composites are rendered by ``tests/vision/_media.py`` from ``tests/data``)."""
    import cv2

    if media.startswith("composite:"):  # real photos with a card / QR code pasted in
        from tests.vision import _media

        made = {
            "composite:sign": _media.office_with_sign,
            "composite:label": _media.shelf_with_label,
            "composite:qr": lambda: _media.photo_with_qr("hello streamkit"),
        }
        return [(0, _jpeg(made[media](), 90))]
    path = data / media
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return [(0, _jpeg(np.asarray(image, np.uint8)))]
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    out: list[tuple[int, bytes]] = []
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        t = round(index * NS_PER_S / fps)
        if t >= len(out) * NS_PER_S // FPS:  # FPS frames a second of the clip
            out.append((t, _jpeg(np.asarray(frame, np.uint8))))
        index += 1
    cap.release()
    return out
