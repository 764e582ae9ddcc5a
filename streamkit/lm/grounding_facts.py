"""Camera facts (pure): what one observation says, as a value and as the prompt's camera line.

:class:`SceneFacts` is what the vision encoder's :class:`~streamkit.core.events.Observation`
tells an assistant, reduced to what people ask about: how many people, what colour they wear
(``Detection("clothes", text=colour)``: the region below a face), text in view (OCR ``text``
detections), QR codes, motion, darkness and the dominant colours. It has one textual form,
the camera line of the fused prompt (:mod:`streamkit.lm.fusion`)::

    Camera now: one person, wearing orange; a sign reads "EXIT 12"; mostly orange and white.
    Camera now: nothing (no video).

:meth:`SceneFacts.render` writes it and :func:`parse_facts` reads it back (``parse_facts(
facts.render()) == facts``, tested), so the grounding layer (:mod:`streamkit.lm.grounding`),
which sees only the request a backend receives, decides from the same facts the model is shown.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from streamkit.core.events import Detection, Observation

__all__ = [
    "CAMERA_PREFIX",
    "NO_VIDEO",
    "NUMBER_WORDS",
    "SceneFacts",
    "count_words",
    "facts_of",
    "number_of",
    "parse_facts",
    "people_count",
    "plural",
    "singular",
]

CAMERA_PREFIX = "Camera now:"
NO_VIDEO = "nothing (no video)"
NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)  # fmt: skip
_OWN_LABELS = ("face", "person", "clothes", "qr", "text")


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    x, y, w, h = inner
    cx, cy = x + w / 2, y + h / 2
    ox, oy, ow, oh = outer
    return ox <= cx <= ox + ow and oy <= cy <= oy + oh


def people_count(detections: Sequence[Detection]) -> int:
    """People in view: person boxes, plus faces that are not inside one (same person)."""
    persons = [d.box for d in detections if d.label == "person"]
    faces = [d.box for d in detections if d.label == "face"]
    return len(persons) + sum(1 for f in faces if not any(_inside(f, p) for p in persons))


def count_words(n: int, one: str, many: str) -> str:
    """``two people``, ``one person``, ``no people``."""
    word = "no" if n == 0 else NUMBER_WORDS[n] if 0 < n <= 10 else str(n)
    return f"{word} {one if n == 1 else many}"


def number_of(word: str) -> int | None:
    """The number a word or digits name (``"no"`` is 0; words up to twenty), else None."""
    if word.isdigit():
        return int(word)
    if word == "no":
        return 0
    return NUMBER_WORDS.index(word) if word in NUMBER_WORDS else None


def plural(label: str) -> str:
    """``cup`` → ``cups``, ``box`` → ``boxes``."""
    return label + ("es" if label.endswith(("s", "x", "ch", "sh")) else "s")


def singular(word: str) -> str:
    """The label whose :func:`plural` is ``word`` (``word`` itself when none is)."""
    return next((w for w in (word[:-2], word[:-1]) if plural(w) == word), word)


@dataclass(frozen=True, slots=True)
class SceneFacts:
    """What the camera shows now (``video=False``: no camera at all).

    Attributes:
        people: persons in view (a face inside a person box counts once).
        wearing: colour names of what the people wear, one per distinct colour.
        texts: lines of text read in view (OCR).
        qr: decoded QR codes (``""``: a QR code that could not be read).
        things: other detected labels with their counts, sorted by label.
        moving: something in view moves.
        dark: the picture is dark.
        colours: the dominant colour names of the whole frame, largest first (≤ 2 kept).
    """

    video: bool = True
    people: int = 0
    wearing: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    qr: tuple[str, ...] = ()
    things: tuple[tuple[str, int], ...] = ()
    moving: bool = False
    dark: bool = False
    colours: tuple[str, ...] = ()

    def render(self) -> str:
        """The camera line (see the module docstring)."""
        if not self.video:
            return f"{CAMERA_PREFIX} {NO_VIDEO}."
        people = count_words(self.people, "person", "people")
        if self.wearing:
            people += ", wearing " + " and ".join(self.wearing)
        parts = [people]
        parts.extend(count_words(k, label, plural(label)) for label, k in self.things)
        if self.texts:
            parts.append("a sign reads " + " / ".join(f'"{t}"' for t in self.texts))
        parts.extend(f'a QR code reads "{q}"' if q else "an unreadable QR code" for q in self.qr)
        if self.moving:
            parts.append("something is moving")
        if self.dark:
            parts.append("it is dark")
        if self.colours:
            parts.append("mostly " + " and ".join(self.colours))
        return f"{CAMERA_PREFIX} {'; '.join(parts)}."

    def words(self) -> str:
        """Every word the facts contain (what an answer may name without inventing it)."""
        return " ".join([*self.wearing, *self.texts, *self.qr, *self.colours,
                         *(label for label, _ in self.things)])  # fmt: skip


def _clean(text: str) -> str:
    return " ".join(text.replace('"', "'").split())


def facts_of(
    observations: Sequence[Observation], moving_above: float = 0.02, dark_below: float = 0.2
) -> SceneFacts:
    """The facts of the best observation (first); people, what they wear, text and motion
    from any of them (a face missed for a frame, OCR that ran on another keyframe). No
    observation: ``SceneFacts(video=False)``."""
    if not observations:
        return SceneFacts(video=False)
    best = observations[0]
    dets = best.detections
    # people: the most seen in the chosen observations (a detector misses a face that turns
    # away for a frame); what they wear from the best observation that shows it
    worn = next((o.detections for o in observations if any(d.label == "clothes" for d in
                 o.detections)), dets)  # fmt: skip
    wearing = tuple(dict.fromkeys(_clean(d.text) for d in worn if d.label == "clothes" and d.text))
    others = Counter(d.label for d in dets if d.label not in _OWN_LABELS)
    # text from the best observation that read any (OCR runs on some keyframes only)
    read = next((o.detections for o in observations if any(d.label in ("text", "qr") for d in
                 o.detections)), dets)  # fmt: skip
    return SceneFacts(
        people=max(people_count(o.detections) for o in observations),
        wearing=wearing,
        texts=tuple(_clean(d.text) for d in read if d.label == "text" and d.text.strip()),
        qr=tuple(_clean(d.text) for d in read if d.label == "qr"),
        things=tuple(sorted(others.items())),
        moving=any(o.motion >= moving_above for o in observations),
        dark=best.brightness < dark_below,
        colours=tuple(best.colours[:2]),
    )


_PART = re.compile(r'(?:[^;"]|"[^"]*")+')
_QUOTED = re.compile(r'"([^"]*)"')
_PEOPLE = re.compile(r"^(\w+) (?:person|people)(?:, wearing (.+))?$")
_THING = re.compile(r"^(\w+) (\w+)$")


def parse_facts(line: str) -> SceneFacts | None:
    """Read a camera line back (``None``: not a camera line)."""
    text = line.strip()
    if not text.startswith(CAMERA_PREFIX):
        return None
    body = text[len(CAMERA_PREFIX) :].strip().removesuffix(".")
    if body == NO_VIDEO or not body:
        return SceneFacts(video=False)
    people, wearing, texts, qr, things = 0, (), [], [], []
    moving = dark = False
    colours: tuple[str, ...] = ()
    for raw in _PART.findall(body):
        part = raw.strip()
        if part.startswith("a sign reads "):
            texts.extend(_QUOTED.findall(part))
        elif part.startswith("a QR code reads "):
            qr.extend(_QUOTED.findall(part)[:1])
        elif part == "an unreadable QR code":
            qr.append("")
        elif part == "something is moving":
            moving = True
        elif part == "it is dark":
            dark = True
        elif part.startswith("mostly "):
            colours = tuple(part[len("mostly ") :].split(" and "))
        elif (match := _PEOPLE.match(part)) is not None:
            people = number_of(match.group(1)) or 0
            if match.group(2):
                wearing = tuple(match.group(2).split(" and "))
        elif (match := _THING.match(part)) is not None and number_of(match.group(1)) is not None:
            n, word = number_of(match.group(1)) or 0, match.group(2)
            if n != 1:
                word = singular(word)
            things.append((word, n))
    return SceneFacts(
        people=people,
        wearing=wearing,
        texts=tuple(texts),
        qr=tuple(qr),
        things=tuple(sorted(things)),
        moving=moving,
        dark=dark,
        colours=colours,
    )
