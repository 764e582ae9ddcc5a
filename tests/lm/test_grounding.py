"""Grounded answers: question classes over phrasings the bench does not use, answers from facts."""

from __future__ import annotations

import pytest

from streamkit.lm.grounding import CANT_TELL, NO_VIDEO_ANSWER, classify, decide
from streamkit.lm.grounding_facts import SceneFacts
from streamkit.lm.grounding_memory import UNKNOWN, remember

TWO = SceneFacts(people=2, wearing=("red", "green"), colours=("white", "red"))
ONE = SceneFacts(people=1, wearing=("yellow",), colours=("grey", "yellow"), moving=True)
EMPTY = SceneFacts(people=0, colours=("brown",))
SIGN = SceneFacts(people=0, texts=("PLATFORM 4",), colours=("grey",))
QR = SceneFacts(people=1, qr=("see you at noon",), colours=("white",))
NOVIDEO = SceneFacts(video=False)


def answer(question: str, facts: SceneFacts | None) -> str | None:
    decided = decide(question, facts, {})
    return None if decided is None else decided[0]


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("how many faces are in the picture", "count"),
        ("Could you count the people in the room?", "count"),
        ("Is there somebody in front of the camera?", "presence"),
        ("Can you see me right now?", "presence"),
        ("Is the room empty?", "presence"),
        ("Which colour is my jacket?", "clothing"),
        ("What am I wearing today?", "clothing"),
        ("Is my hoodie green?", "clothing"),
        ("What colour is the wall behind me?", "colour"),
        ("Can you read the poster?", "text"),
        ("What is written on this card?", "text"),
        ("What does the barcode say?", "text"),
        ("Is anything moving over there?", "motion"),
        ("Is it dark in here?", "light"),
        ("What kind of phone do I have?", "unseen"),
        ("Is the person smiling?", "unseen"),
        ("Which hand am I raising?", "unseen"),
        ("How many fingers am I holding up?", "unseen"),
        ("Do you see a cat anywhere?", "unseen"),
        ("Are we alone?", "presence"),
        ("What's on the screen?", "text"),
        ("Do you know what a QR code is?", "none"),
        ("Describe the room for me.", "describe"),
        ("Which company made my phone?", "unseen"),
        ("What have I got in my hand? What am I holding up?", "unseen"),
        ("How old do I look?", "unseen"),
        ("Do I look tired?", "unseen"),
        ("What colour are my socks?", "unseen"),
        ("Is there a laptop on the table in front of you?", "unseen"),
        ("What is the dominant colour?", "colour"),
        ("What colour is the woman wearing?", "clothing"),
        ("Scan this QR code, please.", "text"),
        ("What animal is this?", "unseen"),
        ("What time is it on my watch?", "unseen"),
        # not about the scene: the model answers
        ("How many people live in Tokyo?", "none"),
        ("How many wheels does a bicycle have?", "none"),
        ("What colour is a ripe banana?", "none"),
        ("What brand of car is the most popular?", "none"),
        ("Who wrote Romeo and Juliet?", "none"),
        ("Can you read me a poem?", "none"),
        ("Read it out loud.", "text"),
        ("Tell me a story about a dragon.", "none"),
    ],
)
def test_classify_covers_many_phrasings(question: str, kind: str) -> None:
    assert classify(question).kind == kind


def test_counts_and_presence_come_from_the_facts() -> None:
    assert answer("How many persons are in view?", TWO) == "I see two people."
    assert answer("how many faces do you count", EMPTY) == "I see nobody."
    assert answer("Is somebody there?", ONE) == "Yes, I see one person."
    assert answer("Do you see anyone?", EMPTY) == "No, I see nobody."
    assert answer("Is the room empty?", EMPTY) == "Yes, I see nobody."


def test_clothing_is_the_colour_below_the_face_in_second_person() -> None:
    assert answer("What colour is my sweater?", ONE) == "Your sweater looks yellow."
    assert answer("What colours am I wearing?", TWO) == "You are wearing red and green."
    assert answer("Is my coat yellow?", ONE) == "Yes, it looks yellow."
    assert answer("Is my coat blue?", ONE) == "No, it looks yellow."
    assert answer("What colour is my shirt?", EMPTY) == CANT_TELL  # nobody in view


def test_background_is_the_dominant_colour() -> None:
    assert answer("What colour is the background?", ONE) == "The background looks mostly grey."
    assert answer("What colours can you see?", EMPTY) == "It looks mostly brown."


def test_text_and_qr_codes_are_read_back() -> None:
    assert answer("What does that sign say?", SIGN) == "The sign says PLATFORM 4."
    assert answer("Can you read it for me?", SIGN) == "It says PLATFORM 4."
    assert answer("What does the Q.R. code say?", QR) == "The QR code says see you at noon."
    assert answer("What is written on the whiteboard?", EMPTY) == CANT_TELL


def test_what_the_facts_do_not_show_is_an_honest_cant_tell() -> None:
    for question in ("What brand are my sunglasses?", "What am I holding?", "How old am I?",
                     "What colour are my boots?", "Who is that next to me?"):  # fmt: skip
        assert answer(question, ONE) == CANT_TELL, question


def test_no_video_means_no_scene_answer_at_all() -> None:
    for question in ("How many people are here?", "What colour is my shirt?",
                     "What does the sign say?", "Is anyone there?"):  # fmt: skip
        assert answer(question, NOVIDEO) == NO_VIDEO_ANSWER
        assert answer(question, None) == NO_VIDEO_ANSWER


def test_motion_light_and_description() -> None:
    assert answer("Is something moving?", ONE) == "Yes, something is moving."
    assert answer("Am I waving?", EMPTY) == "No, nothing is moving."
    assert answer("Is it dark?", SceneFacts(dark=True)) == "Yes, it is dark."
    described = answer("What do you see?", SIGN)
    assert described is not None
    assert "PLATFORM 4" in described
    assert "nobody" in described


def test_other_questions_go_to_the_model() -> None:
    for question in ("What is the capital of Spain?", "Tell me about dolphins.",
                     "How many legs does an ant have?", "What colour is grass?"):  # fmt: skip
        assert decide(question, ONE, {}) is None, question


def test_memory_is_recalled_and_unknown_is_admitted() -> None:
    memory = remember(["Hi, my name is Jonas.", "My cat is called Luna and I live in Oslo."])
    assert decide("Do you remember my name?", ONE, memory) == ("Your name is Jonas.", "memory")
    assert decide("What's my cat's name?", None, memory) == ("Your cat is called Luna.", "memory")
    assert decide("Where do I live?", None, memory) == ("You live in Oslo.", "memory")
    assert decide("What is my brother called?", None, memory) == (UNKNOWN, "memory")


def test_a_statement_is_acknowledged_in_second_person() -> None:
    assert decide("My name is Priya.", None, {}) == ("Okay: your name is Priya.", "statement")
    assert decide("Is my name Priya?", None, {}) is None


def test_someone_else_s_clothes_and_a_named_relative() -> None:
    assert answer("What is the man wearing?", ONE) == "The person is wearing yellow."
    assert answer("What are they wearing?", TWO) == "They are wearing red and green."
    memory = remember(["I have a brother named Luis."])
    assert decide("What is my brother's name?", None, memory) == (
        "Your brother is called Luis.",
        "memory",
    )


def test_a_thing_a_detector_saw_is_confirmed_and_any_other_is_cant_tell() -> None:
    facts = SceneFacts(people=1, things=(("cup", 2), ("dog", 1)))
    assert answer("Can you see my dog?", facts) == "Yes, I see one dog."
    assert answer("Is there a cup on the table?", facts) == "Yes, I see two cups."
    assert answer("Do you see a cat?", facts) == CANT_TELL
    assert answer("Do you see a cat?", NOVIDEO) == NO_VIDEO_ANSWER


def test_what_the_user_likes_is_recalled_by_what_they_asked() -> None:
    memory = remember(["I like the colour red."])
    assert decide("What colour do I like?", None, memory) == ("You like the colour red.", "memory")
    assert decide("What food do I like?", None, {}) == (UNKNOWN, "memory")
