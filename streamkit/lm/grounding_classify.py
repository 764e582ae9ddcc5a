"""Question classes (pure): what a question asks about the scene, from its words.

:func:`classify` sorts a question into ``count``, ``presence``, ``clothing``, ``colour``,
``text``, ``motion``, ``light``, ``describe``, ``unseen`` (what the camera facts cannot hold:
a brand, a held object, age, mood, shoes…) or ``none`` (not about the scene), over broad
phrasings (contractions expanded, US spellings folded, "Q.R." read as "QR"). A question needs a
scene cue to be a scene question: "what colour is *my* shirt", "what colour is the
*background*", "how many people *do you see*"; "what colour is the sky on a clear day" or "how
many people live in Tokyo" have none and stay with the language model.
:mod:`streamkit.lm.grounding` answers the classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["COLOURS", "Question", "QuestionKind", "classify", "normalise"]

QuestionKind = Literal[
    "count", "presence", "clothing", "colour", "text", "motion", "light", "describe",
    "unseen", "none",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Question:
    """A classified question: ``kind`` and a ``detail`` (the garment, ``qr``, ``empty``,
    the text's noun, a colour asked about…; ``""`` when none)."""

    kind: QuestionKind
    detail: str = ""
    colour: str = ""


_CONTRACTIONS = (
    (r"\bwhat's\b", "what is"), (r"\bwho's\b", "who is"), (r"\bwhere's\b", "where is"),
    (r"\bthat's\b", "that is"), (r"\bit's\b", "it is"), (r"\bthere's\b", "there is"),
    (r"\bi'm\b", "i am"), (r"\byou're\b", "you are"), (r"\bcan't\b", "cannot"),
    (r"\bdon't\b", "do not"), (r"\bdoesn't\b", "does not"), (r"\bisn't\b", "is not"),
    (r"\baren't\b", "are not"), (r"\bcolor", "colour"), (r"\bgray\b", "grey"),
    (r"\bq r\b", "qr"), (r"\bt shirt\b", "tshirt"),
)  # fmt: skip


def normalise(text: str) -> str:
    """Lower case, contractions expanded, US spellings folded, punctuation → spaces."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    for pattern, repl in _CONTRACTIONS:
        text = re.sub(pattern, repl, text)
    return " ".join(text.replace("'", " ").split())


COLOURS = (
    "red", "orange", "yellow", "green", "blue", "purple", "violet", "pink", "brown", "black",
    "white", "grey", "silver", "gold", "golden", "beige", "navy", "cyan", "teal", "turquoise",
    "maroon", "magenta", "dark", "light",
)  # fmt: skip
_UPPER = (
    "shirt", "shirts", "tshirt", "top", "jacket", "sweater", "jumper", "hoodie", "blouse",
    "coat", "suit", "dress", "clothes", "clothing", "outfit", "vest", "cardigan", "uniform",
    "sweatshirt", "pullover", "polo",
)  # fmt: skip
_ELSEWHERE = (
    "shoes", "shoe", "socks", "trousers", "pants", "jeans", "shorts", "skirt", "hat", "cap",
    "glasses", "sunglasses", "watch", "tie", "scarf", "gloves", "belt", "boots", "earrings",
    "necklace", "ring", "bag", "hair", "eyes", "eye", "lipstick", "nails", "beard", "mask",
    "phone", "car", "cup", "mug", "book", "pen", "bottle", "headphones", "bracelet", "sleeves",
)  # fmt: skip
_PEOPLE = (
    r"people|persons|person|faces|face|men|man|women|woman|humans|human|kids|children|"
    r"guys|folks|adults|of us|individuals"
)
_WHO = r"anyone|anybody|someone|somebody|a person|people|any people|any faces|a face|humans"
_SCENE = (
    r"\b(?:you see|you can see|can you see|do you see|you notice|in view|in front of (?:you|me|"
    r"the camera)|on (?:the )?camera|in (?:the|this) (?:picture|image|frame|video|room|shot|"
    r"photo|view)|behind me|around me|next to me|on my|in my|here|right now)\b"
)
_MINE = r"\b(?:my|am i|i am|i have on|me|this|that|these|those)\b"
_THEY_WEAR = (
    r"\b(?:what|(?:what|which) colours?) (?:is|are) (?:he|she|they|the (?:person|man|woman|"
    r"people|guy|"
    r"girl|boy|kid|child)) wearing\b"
)
_TEXT_NOUNS = (
    "sign", "label", "card", "note", "paper", "papers", "page", "poster", "board", "screen",
    "menu", "text", "writing", "letters", "words", "banner", "display", "plate", "ticket",
    "price", "title", "book", "cover", "box", "package", "shirt",
)  # fmt: skip


def _has(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def _word(words: tuple[str, ...], text: str) -> str:
    return next((w for w in text.split() if w in words), "")


def _classify_text(q: str) -> Question | None:
    qr = _has(r"\b(?:qr|barcode|bar code|qr code)\b", q) and not _has(
        r"\bwhat (?:is )?an? (?:qr|barcode|bar code)\b|\bhow (?:do|does) (?:a |an )?(?:qr|bar)", q
    )  # "what is a QR code" is general knowledge
    asks = (
        _has(r"\bwhat (?:does|do|did) (?:the|this|that|my|these|those|it|they|your)\b.*\b(?:say|"
             r"read|show|tell)\b", q)
        or _has(r"\bread(?:ing)? (?:me )?(?:the|this|that|it|these|those|what|my|out)\b", q)
        or _has(r"\b(?:can|could) you read\b(?! me a\b)", q)
        or _has(r"\bwhat is (?:written|printed|typed)\b|\bwhat (?:is|are) the (?:words|text|"
                r"writing|letters)\b|\bwhat (?:text|words) (?:do|can) you\b", q)
        or _has(r"\bwhat is (?:on|shown on|displayed on) (?:the|this|that|my) (?:screen|sign|"
                r"board|display|poster|paper|page|card|label|note|menu|banner|whiteboard)\b", q)
        or (qr and _has(r"\b(?:what|say|says|mean|contain|link|url|decode|scan)\b", q))
    )  # fmt: skip
    if qr and asks:
        return Question("text", "qr")
    if asks:
        return Question("text", _word(_TEXT_NOUNS, q))
    titled = r"\b(?:title|name) of (?:the|this|that|my) (?:book|shop|store|sign|film|poster)"
    if _has(titled, q) and _has(_SCENE + r"|\b(?:this|that|on the shelf|on the wall)\b", q):
        return Question("text", "title")
    return None


def classify(question: str) -> Question:
    """What ``question`` asks about the scene (see the module docstring)."""
    q = normalise(question)
    if not q:
        return Question("none")
    if _has(r"\bhow many\b", q) or _has(
        r"\b(?:count|number of) (?:the )?(?:" + _PEOPLE + r")\b", q
    ):
        if _has(r"\b(?:" + _PEOPLE + r")\b", q) and not _has(r"\b(?:do|did) (?:i|you) have\b", q):
            if _has(
                r"\bhow many\b.*\b(?:" + _PEOPLE + r")\b.*\b(?:are there in|live|work|"
                r"speak|have|has|in (?:the|a) (?:world|country|city))\b",
                q,
            ):
                return Question("none")  # "how many people live in Paris"
            return Question("count")
        if _has(_SCENE, q) or _has(r"\b(?:am i|i am|my)\b", q):
            return Question("unseen", "count")  # "how many fingers am I holding up"
        return Question("none")
    if _has(
        r"\b(?:room|it|the picture|the view|this place) (?:is )?empty\b|\bis (?:the room|"
        r"it|this place) empty\b|\b(?:am i|are we|are you) alone\b",
        q,
    ):
        return Question("presence", "empty")
    if (
        _has(r"\b(?:is|are) (?:there )?(?:" + _WHO + r")\b", q)
        or _has(r"\b(?:see|notice|detect|spot) (?:" + _WHO + r"|me|my face|a human)\b", q)
        or _has(
            r"\b(?:am i|are we) (?:in view|visible|on camera|in the picture|in frame|"
            r"in the frame|in the shot|there)\b",
            q,
        )
        or q in ("anyone there", "anybody there", "anyone here", "hello is anyone there")
    ):
        return Question("presence")  # fmt: skip
    if _has(
        r"\bwho (?:is|do you see|can you see) (?:there|here|in the room|in the picture|on "
        r"camera|in view)\b|\bwho do you see\b",
        q,
    ):
        return Question("presence", "who")
    text = _classify_text(q)
    if text is not None:
        return text
    if _has(
        r"\b(?:mov(?:e|es|ed|ing|ement)|motion|waving|wave|waves|stand(?:ing)? still)\b", q
    ) and _has(r"\b(?:anything|something|anyone|someone|see|is|are|am i|do i|any)\b", q):
        return Question("motion")
    if _has(
        r"\bis it (?:dark|bright|light)\b|\bis (?:the room|it|this place) (?:too )?(?:dark|"
        r"bright|dim)\b|\bhow (?:bright|dark) is\b|\bis the light(?:ing)? on\b",
        q,
    ):
        return Question("light")
    asked_colour = _word(COLOURS, q)
    if _has(
        r"\b(?:what|which) colours?\b|\bcolour of\b|\bwhat am i wearing\b|\bam i wearing\b"
        r"|\b(?:dominant|main|most common|overall) colours?\b|"
        + _THEY_WEAR
        + r"|\bwhat (?:is|are) my (?:clothes|outfit)\b|\bdescribe my (?:clothes|outfit)\b"
        r"|\b(?:is|are) my \w+ (?:" + "|".join(COLOURS) + r")\b",
        q,
    ):
        garment = _word(_UPPER, q)
        other = _word(_ELSEWHERE, q)
        if _has(_THEY_WEAR, q) and not other:
            return Question("clothing", "they", asked_colour)
        mine = _has(_MINE, q) or "wearing" in q.split()
        if other and (mine or _has(_SCENE, q)):
            return Question("unseen", other)
        if (garment and mine) or _has(r"\b(?:am i wearing|i am wearing|i have on)\b", q):
            return Question("clothing", garment, asked_colour)
        if _has(
            r"\b(?:background|wall|walls|room|scene|picture|image|view|frame|behind me|"
            r"around me|main colour|dominant colour|mostly)\b",
            q,
        ) or _has(_SCENE, q):
            return Question(
                "colour",
                "background"
                if _has(
                    r"\b(?:background|wall|walls|behind "
                    r"me)\b",
                    q,
                )
                else "",
            )
        if _has(r"\bwhat colours? (?:is|are) (?:this|that|it|these|those)$", q):
            return Question("unseen", "colour")
        return Question("none")
    if _has(
        r"\bwhat (?:do|can) you see\b|\bwhat are you seeing\b|\bdescribe (?:the|this|what|"
        r"me|my surroundings|the scene|the room|the picture)\b|\bwhat is (?:in front of|"
        r"around) (?:you|me|the camera)\b|\bwhat does the camera (?:see|show)\b|\bwhat is "
        r"(?:in|on) (?:the )?(?:picture|image|video|camera)\b",
        q,
    ):
        return Question("describe")
    if _has(r"\b(?:brand|make|maker|made|manufacturer|company|model|logo)\b", q) and (
        _has(_MINE, q) or _has(_SCENE, q)
    ):
        return Question("unseen", "brand")  # fmt: skip
    if _has(
        r"\b(?:holding|hold|held|in my hands?|carrying|pointing at|showing you|show you|"
        r"am i showing|have in my hand|which hand|raising|raised|lifting)\b",
        q,
    ):
        return Question("unseen", "held")
    if _has(
        r"\bhow old (?:am i|do i look|is (?:he|she|this|that))\b|\bguess my age\b|\bmy age\b", q
    ):
        return Question("unseen", "age")
    if _has(
        r"\b(?:am i|do i look|how do i look|how am i looking|do you think i am)\b.*\b(?:happy|"
        r"sad|angry|tired|ok|okay|good|nice|fine|upset|bored|smiling|frowning|pretty|"
        r"handsome|old|young|tall|short|sick|well|beautiful|ugly)\b|\bhow do i look\b|\bwhat "
        r"is my (?:mood|expression|emotion|face|hair|eye)|\b(?:is|are) (?:he|she|they|anyone|"
        r"someone|the (?:person|man|woman|guy|girl|boy|kid|child|people)) (?:smiling|laughing|"
        r"frowning|crying|happy|sad|angry|tired|looking at|talking|sitting|standing)\b",
        q,
    ):
        return Question("unseen", "look")
    if _has(
        r"\bwhat (?:is|are) (?:this|that|these|those)(?: thing| object| things)?$|\bwhat "
        r"(?:is|are) (?:this|that|these|those) (?:in my|on my|behind|next to|here)|\bwhat is "
        r"behind me\b|\bwhat is (?:on|in) my (?:desk|table|wall|head|hand|lap|shelf)\b|\bwhat "
        r"kind of \w+ (?:is|are) (?:this|that|my|these|those)\b|\bwho is (?:this|that|he|she|"
        r"with me|next to me|behind me)\b|\bdo i have (?:glasses|a beard|a hat)\b|\bwhat "
        r"(?:kind|type|sort|make|model) of \w+ (?:do|did) i (?:have|own|use|carry)\b",
        q,
    ):
        return Question("unseen", "object")
    thing = re.search(
        r"\b(?:(?:do|can|could) you (?:see|spot|notice) (?:a|an|any|some|my|the)|(?:is|are) "
        r"there (?:a|an|any|some)|(?:see|notice|spot) my) (\w+)\b",
        q,
    )
    if thing is not None and (
        _has(_SCENE, q)
        or _has(r"\b(?:you see|you spot|you notice|on the (?:table|desk|wall|floor|shelf))\b", q)
        or _has(r"\bsee my\b", q)
    ):
        return Question("unseen", "thing:" + thing.group(1))  # answered if a detector saw it
    if _has(r"\bwhat \w+ (?:is|are) (?:this|that|these|those)$", q):
        return Question("unseen", "object")  # "what animal is this"
    if _has(r"\bmy (?:" + "|".join(_UPPER + _ELSEWHERE) + r")\b", q):
        return Question("unseen", "object")  # "what time is it on my watch": details unseen
    return Question("none")
