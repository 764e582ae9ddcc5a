"""Helpers: decode real test media with OpenCV, and render a real QR code into a photo."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

DATA = Path(__file__).resolve().parent.parent / "data"

Image = npt.NDArray[np.uint8]


def frames(relpath: str) -> Iterator[Image]:
    """Every decoded BGR frame of ``tests/data/<relpath>`` (cv2.VideoCapture)."""
    cap = cv2.VideoCapture(str(DATA / relpath))
    assert cap.isOpened(), relpath
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield np.asarray(frame, np.uint8)
    finally:
        cap.release()


def image(relpath: str) -> Image:
    img = cv2.imread(str(DATA / relpath), cv2.IMREAD_COLOR)
    assert img is not None, relpath
    return np.asarray(img, np.uint8)


def photo_with_qr(text: str, relpath: str = "images/face_recognition_obama.jpg") -> Image:
    """A real photo with a segno-rendered QR code pasted in at a perspective, then JPEG'd.

    The code is warped onto a quadrilateral (as if photographed at an angle), slightly
    blurred, and the whole picture goes through a JPEG round trip at quality 85.
    """
    import segno  # test dependency (dev extra): renders the QR code

    buf = io.BytesIO()
    # make_qr: always a full QR code (segno.make picks Micro QR for short texts)
    segno.make_qr(text, error="m").save(buf, kind="png", scale=6, border=4)
    code = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)
    photo = image(relpath)
    h, w = code.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[560, 700], [820, 730], [800, 990], [540, 960]])
    warp = cv2.getPerspectiveTransform(src, dst)
    size = (photo.shape[1], photo.shape[0])
    warped = cv2.warpPerspective(code, warp, size)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), warp, size)
    out = photo.copy()
    out[mask > 0] = warped[mask > 0]
    out = cv2.GaussianBlur(out, (3, 3), 0)
    ok, jpg = cv2.imencode(".jpg", out, [int(cv2.IMWRITE_JPEG_QUALITY), 85])
    assert ok
    return np.asarray(cv2.imdecode(jpg, cv2.IMREAD_COLOR), np.uint8)


def first_frame(relpath: str) -> Image:
    """The first decoded frame of a clip in ``tests/data``."""
    return next(frames(relpath))


def photo_with_card(
    photo: Image, lines: list[str], quad: list[list[int]], *, quality: int = 85
) -> Image:
    """A real photo with a white printed card (``lines`` of text, OpenCV's Hershey font)
    warped onto ``quad`` (as if photographed at an angle), slightly blurred, then JPEG'd."""
    card = np.full((220, 520, 3), 245, np.uint8)
    cv2.rectangle(card, (6, 6), (513, 213), (30, 30, 30), 4)
    for i, line in enumerate(lines):
        y = 95 + i * 80 if len(lines) > 1 else 140
        cv2.putText(card, line, (30, y), cv2.FONT_HERSHEY_DUPLEX, 2.0, (20, 20, 20), 4, cv2.LINE_AA)
    h, w = card.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    warp = cv2.getPerspectiveTransform(src, np.float32(quad))
    size = (photo.shape[1], photo.shape[0])
    warped = cv2.warpPerspective(card, warp, size)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), warp, size)
    out = photo.copy()
    out[mask > 0] = warped[mask > 0]
    out = cv2.GaussianBlur(out, (3, 3), 0)
    ok, jpg = cv2.imencode(".jpg", out, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    assert ok
    return np.asarray(cv2.imdecode(jpg, cv2.IMREAD_COLOR), np.uint8)


def office_with_sign() -> Image:
    """The office clip's first frame (640×480) with an "EXIT 12" card by the window."""
    office = cv2.resize(first_frame("video/imageio_realshort.mp4"), (640, 480))
    return photo_with_card(office, ["EXIT 12"], [[330, 60], [610, 80], [600, 230], [325, 215]])


def shelf_with_label() -> Image:
    """The hand-wave clip's first frame with a "Coffee cup / 3.50 EUR" card in front."""
    shelf = first_frame("video/imageio_test_handwave.webm")
    quad = [[20, 250], [300, 262], [296, 400], [16, 390]]
    return photo_with_card(shelf, ["Coffee cup", "3.50 EUR"], quad)
