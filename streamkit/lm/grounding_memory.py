"""Session memory (pure): what the user said about themself, kept as facts and recalled.

A 135M model forgets a name two turns back or recites its prompt instead. So statements the
user makes about themself are read out of what they said (:func:`extract`) into
:class:`MemoryFact` values, rendered into the prompt as one plain second-person line
(:func:`render_memory`)::

    Remember: Your name is Alice. Your dog is called Max. You live in Paris.

and a question that asks for one of them is answered from it (:func:`recall`): "what's my
name" → "Your name is Alice.", "where do I live" → "You live in Paris."; asked for something
never said, the answer is honest ("I don't know that yet: you haven't told me.").

Statements understood (first person, any wording around them): ``my name is X`` / ``call me
X`` / ``I'm called X``, ``my N is called X``, ``my N is X`` (``my favourite colour is green``),
``I live in X``, ``I'm from X``, ``I work at/in/for/as X``, ``I have <number> N`` /
``I have a N``, ``I am <number> (years old)``, ``I like/love X``. Later statements replace
earlier ones with the same key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MEMORY_PREFIX",
    "UNKNOWN",
    "MemoryFact",
    "extract",
    "parse_memory",
    "recall",
    "remember",
    "render_memory",
]

MEMORY_PREFIX = "Remember:"
UNKNOWN = "I don't know that yet: you haven't told me."

_NUM = (r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
        r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|no)")  # fmt: skip
_VALUE = r"([A-Za-z0-9][\w'.-]*(?: [A-Za-z0-9][\w'.-]*){0,3}?)"
_END = r"(?=[.,!?;]|\s+(?:and|but|so|because|what|who|where|how)\b|$)"
_STOP_NOUNS = frozenset({"question", "problem", "point", "guess", "answer", "turn", "god"})


@dataclass(frozen=True, slots=True)
class MemoryFact:
    """One remembered fact: ``key`` (what a question names: ``name``, ``dog``,
    ``favourite colour``, ``live``, ``cat``…) and its second-person ``sentence``."""

    key: str
    sentence: str


def _key(noun: str) -> str:
    noun = " ".join(noun.lower().replace("favorite", "favourite").split())
    if noun.endswith("s") and not noun.endswith("ss") and len(noun) > 3:
        noun = noun[:-1]
    return noun


def _value(text: str) -> str:
    return text.strip().rstrip(".,!?;'")


_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), key, sentence)
    for pattern, key, sentence in (
        (r"\bmy name(?: is|'s) " + _VALUE + _END, "name", "Your name is {v}."),
        (r"\b(?:call me|i am called|i'm called|people call me) " + _VALUE + _END, "name",
         "Your name is {v}."),
        (r"\bmy ((?:\w+ )?\w+?)(?:'s name is| is called| is named| are called) " + _VALUE
         + _END, "{n}", "Your {n} is called {v}."),
        (r"\bmy ((?:favou?rite )?\w+) (?:is|are) (?!called\b|named\b)" + _VALUE + _END, "{n}",
         "Your {n} is {v}."),
        (r"\bi live in " + _VALUE + _END, "live", "You live in {v}."),
        (r"\b(?:i am|i'm|i come) from " + _VALUE + _END, "from", "You are from {v}."),
        (r"\bi work (at|in|for|as) " + _VALUE + _END, "work", "You work {n} {v}."),
        (r"\bi have (?:a|an|one) (\w+) (?:called|named) " + _VALUE + _END, "{n}",
         "Your {n} is called {v}."),
        (r"\bi have (" + _NUM + r") (\w+)" + _END, "{v}", "You have {n} {v}."),
        (r"\b(?:i am|i'm) (\d+|" + _NUM + r")(?: years old)?" + _END, "age",
         "You are {v} years old."),
        (r"\bi (?:really )?(like|love|enjoy) " + _VALUE + _END, "like", "You {n} {v}."),
    )
)  # fmt: skip


def extract(text: str) -> list[MemoryFact]:
    """The facts a user's ``text`` states about themself (see the module docstring)."""
    found: dict[str, MemoryFact] = {}
    for pattern, key, sentence in _RULES:
        for match in pattern.finditer(text):
            groups = [g for g in match.groups() if g is not None]
            n, v = (groups[0].lower(), _value(groups[1])) if len(groups) == 2 else ("", "")
            if len(groups) == 1:
                v = _value(groups[0])
            k = {"{n}": _key(n), "{v}": _key(v)}.get(key, key)
            if not v or k in _STOP_NOUNS or k in found:
                continue
            found[k] = MemoryFact(k, sentence.format(n=n.replace("favorite", "favourite"), v=v))
    return list(found.values())


def remember(texts: Iterable[str]) -> dict[str, MemoryFact]:
    """The facts of every text, in order (a later statement replaces an earlier one)."""
    memory: dict[str, MemoryFact] = {}
    for text in texts:
        for fact in extract(text):
            memory.pop(fact.key, None)
            memory[fact.key] = fact
    return memory


def render_memory(memory: dict[str, MemoryFact]) -> str:
    """The memory line of the prompt (``""`` when nothing is remembered)."""
    if not memory:
        return ""
    return MEMORY_PREFIX + " " + " ".join(f.sentence for f in memory.values())


_SECOND = ((r"\byour\b", "my"), (r"\byou are\b", "I am"), (r"\byou\b", "I"))


def parse_memory(line: str) -> dict[str, MemoryFact]:
    """Read a memory line back (empty: not one)."""
    text = line.strip()
    if not text.startswith(MEMORY_PREFIX):
        return {}
    sentences = re.split(r"(?<=\.) (?=[A-Z])", text[len(MEMORY_PREFIX) :].strip())
    memory: dict[str, MemoryFact] = {}
    for sentence in sentences:
        first = sentence
        for pattern, repl in _SECOND:
            first = re.sub(pattern, repl, first, flags=re.IGNORECASE)
        for fact in extract(first):
            memory[fact.key] = MemoryFact(fact.key, sentence.strip())
    return memory


_ASK: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), key)
    for pattern, key in (
        (r"\b(?:what is|what's|tell me|do you (?:know|remember)|remember|say) my name\b",
         "name"),
        (r"\bwho am i\b|\bwhat am i called\b|\bwhat do (?:people|you) call me\b", "name"),
        (r"\bwhere (?:do|did) i live\b|\bwhere is my home\b|\bwhat city do i live in\b", "live"),
        (r"\bwhere (?:am i|do i come|did i come) from\b", "from"),
        (r"\bwhere do i work\b|\bwhat is my job\b|\bwhat do i do for (?:a )?(?:living|work)\b",
         "work"),
        (r"\bhow old am i\b|\bwhat is my age\b", "age"),
        (r"\bwhat (?:\w+ )?do i (?:like|love|enjoy)\b", "like"),
        (r"\bhow many (\w+) do i have\b", "{1}"),
        (r"\bdo i have (?:a|an|any) (\w+)\b", "{1}"),
        (r"\bwhat(?: is|'s) my ((?:favou?rite )?\w+?)(?:'s name| called| named)?\b(?! of\b)",
         "{1}"),
        (r"\bwhat (?:is|are) my (\w+) called\b", "{1}"),
        (r"\bwhat(?: is|'s) the name of my (\w+)\b", "{1}"),
    )
)  # fmt: skip


def asked_key(question: str) -> str | None:
    """Which remembered fact ``question`` asks for (``None``: not a memory question)."""
    for pattern, key in _ASK:
        match = pattern.search(question)
        if match is not None:
            return _key(match.group(1)) if key == "{1}" else key
    return None


def recall(question: str, memory: dict[str, MemoryFact]) -> str | None:
    """The answer to a memory question from ``memory``: the fact's sentence, ``UNKNOWN`` when
    it asks for a fact never stated, ``None`` when it is not a memory question."""
    key = asked_key(question)
    if key is None:
        return None
    fact = memory.get(key)
    return fact.sentence if fact is not None else UNKNOWN
