"""Camera facts (render ↔ parse), session memory and the answer verifier, without a model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from streamkit.core.events import Detection, Observation
from streamkit.lm.backend import Completion, Usage
from streamkit.lm.grounding_facts import SceneFacts, facts_of, parse_facts
from streamkit.lm.grounding_memory import (
    UNKNOWN,
    extract,
    parse_memory,
    recall,
    remember,
    render_memory,
)
from streamkit.lm.grounding_verify import AnswerVerifier, verify_completion


def observation(detections: list[Detection], **kw: object) -> Observation:
    fields: dict[str, object] = {"pts": 0, "detections": detections, "motion": 0.0,
                                 "brightness": 0.6, "colours": ["green", "white", "red"],
                                 "width": 640, "height": 480}  # fmt: skip
    fields.update(kw)
    return Observation(**fields)  # type: ignore[arg-type]


def test_facts_count_a_face_inside_a_person_once_and_keep_what_is_worn() -> None:
    seen = observation([
        Detection("person", 0.9, (0, 0, 200, 400)),
        Detection("face", 0.9, (60, 20, 60, 60)),
        Detection("face", 0.8, (400, 30, 50, 50)),
        Detection("clothes", 0.5, (40, 90, 120, 120), text="purple"),
        Detection("text", 0.9, (300, 300, 100, 30), text='Gate "B"; 7'),
        Detection("qr", 0.9, (10, 10, 50, 50), text=""),
        Detection("dog", 0.7, (500, 300, 80, 80)),
    ], motion=0.3)  # fmt: skip
    facts = facts_of([seen])
    assert facts.people == 2
    assert facts.wearing == ("purple",)
    assert facts.moving
    assert facts.texts == ("Gate 'B'; 7",)
    assert facts.qr == ("",)
    assert facts.things == (("dog", 1),)
    assert facts.colours == ("green", "white")
    line = facts.render()
    assert line.startswith("Camera now: two people, wearing purple;")
    assert parse_facts(line) == facts


def test_facts_round_trip_for_many_shapes() -> None:
    for facts in (
        SceneFacts(video=False),
        SceneFacts(),
        SceneFacts(people=1, texts=("EXIT", "Open 9-5"), dark=True, colours=("black",)),
        SceneFacts(people=3, wearing=("red", "blue"), qr=("a; b", ""), things=(("box", 2),)),
    ):
        assert parse_facts(facts.render()) == facts
    assert facts_of([]) == SceneFacts(video=False)
    assert parse_facts("Something else.") is None


def test_memory_extracts_statements_about_the_user() -> None:
    said = [f.sentence for f in extract("Hello! I'm called Tomasz, and I work at a hospital.")]
    assert said == ["Your name is Tomasz.", "You work at a hospital."]
    assert [f.key for f in extract("I have three dogs and my favorite food is soup.")] == [
        "favourite food", "dog"]  # fmt: skip
    assert extract("What is the weather like today?") == []


def test_memory_line_round_trips_and_answers() -> None:
    memory = remember(["My name is Ana.", "I'm 41 years old.", "Call me Annie."])
    line = render_memory(memory)
    assert line == "Remember: You are 41 years old. Your name is Annie."
    assert parse_memory(line) == memory
    assert recall("how old am I", memory) == "You are 41 years old."
    assert recall("Where do I work?", memory) == UNKNOWN
    assert recall("What is the capital of Peru?", memory) is None
    assert render_memory({}) == ""


def feed_all(verifier: AnswerVerifier, pieces: list[str]) -> str:
    return "".join(verifier.feed(p) for p in pieces) + verifier.flush()


def test_verifier_passes_knowledge_and_what_was_seen() -> None:
    assert feed_all(AnswerVerifier(["blue"]), ["The sky", " is blue", "."]) == "The sky is blue."
    v = AnswerVerifier(["Camera now: one person, wearing green", "what am I wearing"])
    assert feed_all(v, ["You are", " wearing", " green", "."]) == "You are wearing green."
    assert v.replaced == 0


def test_verifier_replaces_an_invented_claim() -> None:
    v = AnswerVerifier(["say hello"])
    assert feed_all(v, ["You are", " holding a", " red", " phone", "."]) == "I can't tell."
    assert v.replaced == 1
    assert v.stopped
    v = AnswerVerifier(["say hello"])
    out = feed_all(v, ["Hello!", " Your", " shirt", " is", " pink", ". Bye."])
    assert out == "Hello!"
    assert v.replaced == 1


def test_verifier_streams_answers_without_a_claim_at_once() -> None:
    v = AnswerVerifier([])
    assert v.feed("The capital") == "The"
    assert v.feed(" of France is") == " capital of France"


def test_verify_completion_counts_and_stops() -> None:
    closed: list[bool] = []
    replaced: list[int] = []

    async def gen() -> AsyncIterator[str]:
        try:
            for piece in ["I see", " a", " cat", ".", " More."]:
                yield piece
        finally:
            closed.append(True)

    async def run() -> str:
        completion = verify_completion(Completion(gen(), Usage()), ["hi"],
                                       lambda: replaced.append(1))  # fmt: skip
        return "".join([piece async for piece in completion])

    assert asyncio.run(run()) == "I can't tell."
    assert replaced == [1]
    assert closed == [True]


def test_verifier_holds_an_i_only_until_the_next_word() -> None:
    v = AnswerVerifier([])
    assert v.feed("I") == ""
    assert v.feed(" can") == ""
    assert v.feed(" help") == "I can"  # not "I can see": released, minus the partial word
    seen = AnswerVerifier([])
    assert seen.feed("I") + seen.feed(" see") + seen.feed(" a") == ""
    assert seen.feed(" blue car.") == "I can't tell."


def test_facts_take_text_and_clothes_from_another_chosen_observation() -> None:
    read = observation([Detection("text", 0.9, (0, 0, 9, 9), text="OPEN")])
    quick = observation([Detection("face", 0.9, (60, 20, 60, 60)),
                         Detection("clothes", 0.5, (40, 90, 120, 120), text="red")])  # fmt: skip
    facts = facts_of([quick, read])
    assert facts.texts == ("OPEN",)
    assert facts.people == 1
    assert facts_of([read, quick]).wearing == ("red",)
