"""Grounded answers (pure): answer what the camera facts and the memory answer, honestly.

SmolLM2-135M cannot count, copies the camera line back and names colours it was never shown;
it does not say "I can't tell". So the context does the counting and the refusing:
:func:`classify` sorts a question into what it asks about the scene, :func:`answer_scene`
answers it from :class:`~streamkit.lm.grounding_facts.SceneFacts` in plain second person, and
:func:`decide` puts that together with the session memory
(:mod:`streamkit.lm.grounding_memory`):

==============  =============================================  ==============================
kind            asked as (a few of many phrasings)             answered
==============  =============================================  ==============================
``count``       how many people / faces are here               "I see two people."
``presence``    is anyone there, can you see me, room empty?   "Yes, I see one person."
``clothing``    what colour am I wearing, is my shirt red      "Your shirt looks blue."
``colour``      what colour is the background / wall           "It looks mostly blue."
``text``        what does the sign say, read this, QR code     "The sign says EXIT 12."
``motion``      is anything moving, am I waving                "Yes, something is moving."
``light``       is it dark in here                             "No, it looks bright."
``describe``    what do you see, describe the scene            "I see one person, wearing…"
``unseen``      brand, what am I holding, age, mood, shoes…    "I can't tell from what I see."
``none``        not about the scene                            the language model answers
==============  =============================================  ==============================

A scene question with no video at all is answered "I can't tell: I have no video."; one the
facts are silent on (a brand, a held object, shoes below the frame) "I can't tell from what I
see." — so nothing is invented. Everything else (knowledge, requests, chat) goes to the model.
A question needs a scene cue to be a scene question ("what colour is *my* shirt", "what
colour is the *background*"; "what colour is the sky on a clear day" has none): general
knowledge stays with the model.
"""

from __future__ import annotations

import re

from streamkit.lm.grounding_classify import Question, QuestionKind, classify, normalise
from streamkit.lm.grounding_facts import SceneFacts, count_words, plural, singular
from streamkit.lm.grounding_memory import UNKNOWN, MemoryFact, asked_key, extract, recall
from streamkit.lm.grounding_requests import answer_request

__all__ = [
    "CANT_TELL",
    "NO_VIDEO_ANSWER",
    "Question",
    "QuestionKind",
    "answer_scene",
    "classify",
    "decide",
    "normalise",
]

CANT_TELL = "I can't tell from what I see."
NO_VIDEO_ANSWER = "I can't tell: I have no video."


def _join(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _people(facts: SceneFacts) -> str:
    return count_words(facts.people, "person", "people") if facts.people else "nobody"


def _describe(facts: SceneFacts) -> str:
    parts = [_people(facts)]
    if facts.people and facts.wearing:
        parts[0] += " wearing " + _join(facts.wearing)
    if facts.texts:
        parts.append("a sign that says " + " / ".join(facts.texts))
    parts.extend(f"a QR code that says {q}" for q in facts.qr if q)
    if facts.moving:
        parts.append("something moving")
    sentence = "I see " + _join(tuple(parts))
    if facts.colours:
        sentence += ", and it looks mostly " + _join(facts.colours)
    return sentence + "."


def answer_scene(question: Question, facts: SceneFacts) -> str | None:
    """The answer to a scene ``question`` from ``facts`` (``None``: kind ``none``)."""
    kind = question.kind
    if kind == "none":
        return None
    if not facts.video:
        return NO_VIDEO_ANSWER
    if kind == "count":
        return f"I see {_people(facts)}."
    if kind == "presence":
        if question.detail == "empty":
            return "Yes, I see nobody." if not facts.people else f"No, I see {_people(facts)}."
        if question.detail == "who":
            return f"I see {_people(facts)}."
        return f"Yes, I see {_people(facts)}." if facts.people else "No, I see nobody."
    if kind == "clothing":
        if not facts.people or not facts.wearing:
            return CANT_TELL
        worn = _join(facts.wearing)
        if question.colour and question.colour not in ("dark", "light"):
            if question.colour in facts.wearing:
                return f"Yes, it looks {question.colour}."
            return f"No, it looks {worn}."
        if question.detail == "they":
            return f"{'They are' if facts.people > 1 else 'The person is'} wearing {worn}."
        if question.detail and question.detail not in ("clothes", "clothing", "outfit"):
            return f"Your {question.detail} looks {worn}."
        return f"You are wearing {worn}."
    if kind == "colour":
        if not facts.colours:
            return CANT_TELL
        if question.detail == "background":  # the frame's dominant colour: mostly background
            return f"The background looks mostly {facts.colours[0]}."
        return f"It looks mostly {_join(facts.colours)}."
    if kind == "text":
        readable = tuple(q for q in facts.qr if q)
        if question.detail == "qr":
            if readable:
                return f"The QR code says {_join(readable)}."
            return "I see a QR code, but I can't read it." if facts.qr else CANT_TELL
        if facts.texts:
            noun = question.detail
            said = ", ".join(facts.texts)
            if noun in (
                "sign",
                "label",
                "card",
                "note",
                "poster",
                "board",
                "screen",
                "menu",
                "banner",
                "display",
                "plate",
                "ticket",
                "page",
                "paper",
                "cover",
            ):
                return f"The {noun} says {said}."
            return f"It says {said}."
        if readable:
            return f"The QR code says {_join(readable)}."
        return CANT_TELL
    if kind == "motion":
        return "Yes, something is moving." if facts.moving else "No, nothing is moving."
    if kind == "light":
        return "Yes, it is dark." if facts.dark else "No, it looks bright enough."
    if kind == "describe":
        return _describe(facts)
    if question.detail.startswith("thing:"):  # "do you see a dog": yes if a detector saw one
        noun = question.detail.removeprefix("thing:")
        seen = dict(facts.things)
        label = noun if noun in seen else singular(noun)
        if seen.get(label):
            return f"Yes, I see {count_words(seen[label], label, plural(label))}."
    return CANT_TELL  # unseen


def decide(
    question: str, facts: SceneFacts | None, memory: dict[str, MemoryFact]
) -> tuple[str, str] | None:
    """The grounded answer to ``question`` and why (``(text, reason)``), or ``None`` when the
    language model should answer.

    Order: a remembered fact it asks for; a scene question (``facts`` ``None`` = no
    camera line at all: treated as no video); a memory question never answered
    ("I don't know that yet"); a simple request (:mod:`streamkit.lm.grounding_requests`: say,
    count, spell); a plain statement about the user ("Okay: your name is Alice.").
    """
    recalled = recall(question, memory)
    if recalled is not None and recalled != UNKNOWN:
        return recalled, "memory"
    kind = classify(question)
    if kind.kind != "none":
        scene = answer_scene(kind, facts if facts is not None else SceneFacts(video=False))
        if scene is not None:
            return scene, kind.kind
    if asked_key(question) is not None:
        return UNKNOWN, "memory"
    request = answer_request(question)
    if request is not None:
        return request, "request"
    stated = extract(question)
    if (
        stated
        and "?" not in question
        and not re.search(
            r"^(?:what|who|where|how|why|when|which|do|"
            r"does|is|are|can|could|would)\b",
            normalise(question),
        )
    ):
        said = " ".join(f.sentence for f in stated)
        return "Okay: " + said[:1].lower() + said[1:], "statement"
    return None
