"""The fusion context builder (pure): what was said and what was seen, for a small model.

:class:`FusionBuilder.build` renders chat :class:`~streamkit.lm.backend.Message` objects:

1. **system**: the instructions (configurable: ``system_prompt``; ``--instructions``,
   ``session.update``), then the policy (``policy``): talk to the person as "you", one short
   sentence, the camera line lists everything you can see, say "I can't tell." otherwise;
2. **worked examples** (``examples``): ten short made-up exchanges (a count, a sign, a brand
   it cannot tell, what you wear, a name to remember and recall, a request, a fact) as
   earlier chat turns — part of the stable prefix, cached once for every session;
3. **history** as real chat turns: each earlier utterance a ``user`` message, each answer an
   ``assistant`` message (``history="said"`` instead lists only what the user said);
4. **the camera line** as a system message of its own (``facts="before"``), plain
   present-tense facts — ``Camera now: one person, wearing orange; mostly orange.`` — or,
   with no observation, ``Camera now: nothing (no video).``, so a colour is never named from
   nothing (:class:`~streamkit.lm.grounding_facts.SceneFacts` writes and reads this line);
   then what the user said about themself in earlier turns, in second person
   (``Remember: Your name is Alice.``, :mod:`streamkit.lm.grounding_memory`);
5. **the user's words**, nothing else.

Design for a 135M model (measured with ``bench/answers.py``): SmolLM2-135M copies the shape of
its prompt, so nothing in it should be worth copying. No time marks (``[0.4]``) and no
``User:``/``camera:`` prefixes are rendered; times are used only to order messages and to choose
observations (``render_times=True`` brings the marks back for a backend that benefits). The
facts name people (a face inside a person box is one person), what a person wears (the colour
below the face: ``Detection("clothes", text=colour)``), text in view (OCR ``text``, QR codes),
motion and the dominant colour — not raw detector scores.

Observation choice: an observation *during* the utterance beats one before it, which beats
one after it, and nearer beats farther; the latest observation before the utterance is
always eligible however old (vision is change-gated: an unchanged scene sends no new
keyframe, and the last one still shows what the camera sees). The keyframe JPEG sent to
vision-language backends is the one of the best-ranked observation that has one.

Measured (``bench/answers.py``, see docs/architecture.md): the camera line inside the user
message is copied into the answer by SmolLM2-135M ("1 person, wearing orange; mostly
orange."); as its own message before the words it is used, not copied, and the history stays
a cached prefix; four worked examples made "I can't tell." an answer the model gives at all,
eight (adding what you wear, a name recalled, a request) took the dev split from 11 to 13 of
29 in the direct check (typed questions, the real vision encoder and model). Two more
requests ("Count to four.", "Say see you soon.") with a stated rule ("When asked to say
something, say exactly that…") made the model do 4 of the 5 dev request cases instead of 2,
and 4 of 8 new phrasings instead of 2 (typed; either change alone did less).

Budget (tokens, counted with the pluggable ``count_tokens``): the system message, the
examples and the utterance are kept; history is dropped oldest first, then observations
farthest first, then the utterance's oldest words. The layout is append-friendly (stable
prefix first, the words last), so a prompt prefilled while the user speaks shares its prefix
with the final one; the history is chosen against a fixed reserve for the current message
(``utterance_reserve``), so the kept history — the cached prefix — does not change as the
utterance grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from streamkit.core.clock import NS_PER_S, Nanos
from streamkit.core.events import Observation, Word
from streamkit.lm.backend import Message, TokenCounter
from streamkit.lm.grounding_facts import CAMERA_PREFIX, NO_VIDEO, facts_of, people_count
from streamkit.lm.grounding_memory import remember, render_memory

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_SYSTEM_PROMPT",
    "FusedContext",
    "FusionBuilder",
    "FusionConfig",
    "Turn",
    "describe_observation",
    "history_start",
    "people_count",
    "rank_observations",
]

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. You hear the person you talk with and see them "
    "through their camera."
)
"""The default instructions (who the assistant is); replaced by ``--instructions``."""

DEFAULT_POLICY = (
    'Talk to the person directly, as "you". Answer in one short sentence. '
    "The line starting with Camera now lists everything you can see. "
    'If a question is about something it does not list, say "I can\'t tell." '
    "When asked to say something, say exactly that. When asked to count, say the numbers."
)
"""Always appended to the instructions: how to speak and when to say "I can't tell"."""

DEFAULT_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("two people, wearing red and green; mostly white", "How many people are here?",
     "I see two people."),
    ('no people; a sign reads "OPEN"; mostly grey', "What does the sign say?", "It says OPEN."),
    ("one person, wearing yellow; mostly brown", "What brand is my phone?", "I can't tell."),
    ("one person, wearing yellow; mostly brown", "What colour is my jacket?",
     "You are wearing yellow."),
    ("nothing (no video)", "My sister is called Emma.", "Nice, your sister is called Emma."),
    ("nothing (no video)", "What is my sister called?", "Your sister is called Emma."),
    ("nothing (no video)", "Please say good morning.", "Good morning!"),
    ("nothing (no video)", "Count to four.", "One, two, three, four."),
    ("nothing (no video)", "Say see you soon.", "See you soon!"),
    ("nothing (no video)", "What is the capital of Italy?", "The capital of Italy is Rome."),
)  # fmt: skip
"""Worked examples ``(facts, question, answer)`` shown to the model as earlier chat turns
before the real history: small models follow a shown pattern far better than a stated
rule. Deliberately about other things than any test question."""

_SAID_HEADER = "Earlier the user said:"


@dataclass(frozen=True, slots=True)
class Turn:
    """One finished exchange: what the user said (``start``–``end``, ns) and the answer."""

    user: str
    start: Nanos
    end: Nanos
    assistant: str


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """How the context is rendered.

    Attributes:
        system_prompt: the instructions: the stable first part of the system message.
        policy: appended to the instructions (how to answer, when to say "I can't tell");
            ``""`` leaves it out.
        budget_tokens: maximum prompt tokens (as counted by the builder's counter).
        max_observations: at most this many camera observations per utterance (the facts
            line describes the best-ranked one; the others only add motion).
        lookback_ns: observations up to this long before the utterance are eligible (the
            latest one before it always is).
        lookahead_ns: observations up to this long after the utterance are eligible.
        pause_ns: with ``render_times``, a new time mark is written after a pause this long.
        message_overhead: tokens a chat template adds per message (role markers).
        utterance_reserve: tokens set aside for the current message when choosing history, so
            the kept history (the cached prefix) does not change while the utterance grows.
        attach_keyframe: put the chosen keyframe JPEG on the user message.
        history: ``"chat"`` (default) renders earlier turns as user/assistant messages;
            ``"said"`` lists only what the user said at the end of the system message.
        render_times: write time marks (seconds since ``origin``) before the facts and
            words, for backends that use them; off by default (small models copy them).
        moving_above: motion (fraction of the frame) from which the facts say "something
            is moving".
        memory: render what the user said about themself in earlier turns as a memory line
            after the camera line ("Remember: Your name is Alice.",
            :mod:`streamkit.lm.grounding_memory`).
        facts: where the camera line goes: ``"before"`` (default) a system message of its
            own after the history, just before the user's words (the history stays a cached
            prefix); ``"system"`` the end of the first system message; ``"user"`` the first
            line of the user message.
    """

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    policy: str = DEFAULT_POLICY
    budget_tokens: int = 720
    max_observations: int = 2
    lookback_ns: Nanos = 5 * NS_PER_S
    lookahead_ns: Nanos = NS_PER_S // 2
    pause_ns: Nanos = 800_000_000
    message_overhead: int = 5
    utterance_reserve: int = 120
    attach_keyframe: bool = False
    history: Literal["chat", "said"] = "chat"
    render_times: bool = False
    moving_above: float = 0.02
    facts: Literal["user", "system", "before"] = "before"
    examples: tuple[tuple[str, str, str], ...] = DEFAULT_EXAMPLES
    no_video: str = NO_VIDEO
    memory: bool = True


@dataclass(frozen=True, slots=True)
class FusedContext:
    """The builder's result: messages to send plus what went into them."""

    messages: tuple[Message, ...]
    prompt_tokens: int
    observations: tuple[Observation, ...]
    keyframe_jpeg: bytes | None
    history_turns: int
    words_dropped: int


def history_start(costs: Sequence[int], room: int) -> int:
    """Index of the oldest earlier turn to keep (``costs``: each turn's tokens, oldest first)
    so that the kept turns cost at most ``room`` tokens.

    The start moves in steps, not one turn at a time: the turns are cut, oldest first, into
    blocks of at least ``room // 2`` tokens, and the kept history begins at the first block
    boundary from which the rest fits. The kept history — the start of the cached prompt —
    then only grows at its end until a whole block is dropped at once. (Dropping the oldest
    turn whenever a new one came changed the prompt right after the examples at every turn
    of a long conversation: llama.cpp re-evaluated the whole history, ~145 tokens or 1.3 s
    of SmolLM2 on one thread, after each answer.) A single turn too large for a block keeps
    the plain rule: the newest turns that fit."""
    total = sum(costs)
    start = 0
    while start < len(costs) and total > room:
        total -= costs[start]
        start += 1
    block = max(1, room // 2)
    boundaries, filled = [0], 0
    for index, cost in enumerate(costs):
        filled += cost
        if filled >= block:
            boundaries.append(index + 1)
            filled = 0
    return next((b for b in boundaries if start <= b < len(costs)), start)


def _secs(t: Nanos, origin: Nanos) -> str:
    return f"{(t - origin) / NS_PER_S:.1f}"


def describe_observation(obs: Observation, moving_above: float = 0.02) -> str:
    """Plain present-tense facts of one observation, e.g. ``one person, wearing blue; a sign
    reads "EXIT 12"; mostly blue`` (the camera line without its prefix, see
    :class:`~streamkit.lm.grounding_facts.SceneFacts`)."""
    line = facts_of([obs], moving_above).render()
    return line[len(CAMERA_PREFIX) :].strip().removesuffix(".")


def _distance(obs: Observation, start: Nanos, end: Nanos) -> tuple[int, Nanos]:
    """Rank key: (0 during, 1 before, 2 after), then distance to the span (ns)."""
    if start <= obs.pts <= end:
        return (0, abs(obs.pts - (start + end) // 2))
    if obs.pts < start:
        return (1, start - obs.pts)
    return (2, obs.pts - end)


def rank_observations(
    observations: Iterable[Observation],
    start: Nanos,
    end: Nanos,
    config: FusionConfig,
) -> list[Observation]:
    """Eligible observations for the span ``start``–``end`` (ns), best first.

    Eligible: inside ``[start - lookback, end + lookahead]``, plus the latest observation
    before that window (still the current view: vision sends keyframes only on change).
    """
    seen = list(observations)
    low, high = start - config.lookback_ns, end + config.lookahead_ns
    eligible = [obs for obs in seen if low <= obs.pts <= high]
    older = [obs for obs in seen if obs.pts < low]
    if older:
        eligible.append(max(older, key=lambda obs: obs.pts))
    eligible.sort(key=lambda obs: (*_distance(obs, start, end), -obs.pts))
    return eligible


def _render_words(words: Sequence[Word], origin: Nanos, pause_ns: Nanos, times: bool) -> str:
    out: list[str] = []
    previous_end: Nanos | None = None
    for word in words:
        text = word.text.strip()
        if not text:
            continue
        if times and (previous_end is None or word.start - previous_end >= pause_ns):
            out.append(f"[{_secs(word.start, origin)}]")
        out.append(text)
        previous_end = word.end
    return " ".join(out)


class FusionBuilder:
    """Builds the fused prompt. Pure and cheap; one per session (holds only config).

    Args:
        config: rendering options and budget.
        count_tokens: the backend's token counter (or an estimate).
    """

    def __init__(self, config: FusionConfig, count_tokens: TokenCounter) -> None:
        self.config = config
        self.count_tokens = count_tokens

    def _cost(self, text: str) -> int:
        return self.count_tokens(text) + self.config.message_overhead

    def system_text(self) -> str:
        """The system message: instructions, then the policy."""
        cfg = self.config
        parts = [p.strip() for p in (cfg.system_prompt, cfg.policy) if p and p.strip()]
        return " ".join(parts)

    def system_message(self) -> Message:
        """The first message of every prompt (what a backend may prefill once)."""
        return Message("system", self.system_text())

    def prefix_messages(self) -> tuple[Message, ...]:
        """The stable start of every prompt: the system message and the worked examples
        (what a backend prefills once per process; every session's prompts share it)."""
        return (self.system_message(), *self._examples())

    def render_facts(
        self, observations: Sequence[Observation], origin: Nanos = 0, memory: str = ""
    ) -> str:
        """The camera line (facts of the best observation, first; motion from all), then the
        memory line (``memory``: :func:`~streamkit.lm.grounding_memory.render_memory`)."""
        cfg = self.config
        if not observations:
            line = f"{CAMERA_PREFIX} {cfg.no_video}." if cfg.no_video else ""
        else:
            mark = f"[{_secs(observations[0].pts, origin)}] " if cfg.render_times else ""
            line = mark + facts_of(observations, cfg.moving_above).render()
        return "\n".join(part for part in (line, memory) if part)

    def render_utterance(
        self,
        words: Sequence[Word],
        observations: Sequence[Observation],
        origin: Nanos,
        memory: str = "",
    ) -> str:
        """The user message: the camera line, then the words (best observation first)."""
        said = _render_words(words, origin, self.config.pause_ns, self.config.render_times)
        facts = self.render_facts(observations, origin, memory)
        if self.config.facts != "user" or not facts:
            return said
        return facts + "\n" + said

    def _current(
        self,
        words: Sequence[Word],
        observations: Sequence[Observation],
        origin: Nanos,
        memory: str = "",
    ) -> str:
        """What the budget counts as the current message (facts included wherever they go)."""
        text = self.render_utterance(words, observations, origin, memory)
        if self.config.facts == "user":
            return text
        return self.render_facts(observations, origin, memory) + "\n" + text

    def _examples(self) -> list[Message]:
        out: list[Message] = []
        for facts, question, answer in self.config.examples:
            line = f"Camera now: {facts}."
            if self.config.facts == "user":
                out.append(Message("user", line + "\n" + question))
            else:
                if self.config.facts == "before":
                    out.append(Message("system", line))
                out.append(Message("user", question))
            out.append(Message("assistant", answer))
        return out

    def build(
        self,
        history: Sequence[Turn],
        words: Sequence[Word],
        observations: Iterable[Observation],
        *,
        origin: Nanos = 0,
        start: Nanos | None = None,
        end: Nanos | None = None,
    ) -> FusedContext:
        """Render the context for an utterance made of ``words``.

        ``start``/``end`` (ns) default to the first word's start / last word's end; while
        the user is still speaking pass what is known so far. ``origin`` is the time shown
        as 0.0 s (only with ``render_times``). Raises ``ValueError`` when there is nothing
        to answer.
        """
        cfg = self.config
        ordered = sorted(words, key=lambda w: (w.start, w.end))
        if start is None:
            start = ordered[0].start if ordered else None
        if end is None:
            end = ordered[-1].end if ordered else start
        if start is None or end is None:
            raise ValueError("an utterance needs words or a start time")
        ranked = rank_observations(observations, start, end, cfg)
        chosen = ranked[: cfg.max_observations]
        keyframe = next((o.keyframe_jpeg for o in ranked if o.keyframe_jpeg), None)

        system = self.system_text()
        fixed = self._cost(system) + sum(self._cost(m.content) for m in self._examples())
        words_dropped = 0
        memory = ""
        if cfg.memory:  # what the user said about themself in earlier turns
            memory = render_memory(remember(t.user for t in sorted(history, key=lambda t: t.start)))
        current = self._current(ordered, chosen, origin, memory)
        # Over budget with no history at all: drop observations (farthest first), then words.
        while fixed + self._cost(current) > cfg.budget_tokens and len(chosen) > 1:
            chosen = chosen[:-1]
            current = self._current(ordered, chosen, origin, memory)
        while fixed + self._cost(current) > cfg.budget_tokens and len(ordered) > 1:
            ordered = ordered[1:]
            words_dropped += 1
            current = self._current(ordered, chosen, origin, memory)
        current_cost = self._cost(current)
        used = fixed + max(current_cost, cfg.utterance_reserve)

        if cfg.history == "said" and history:
            used += self.count_tokens("\n\n" + _SAID_HEADER)
        turns: list[tuple[Message, Message]] = []
        costs: list[int] = []
        for turn in sorted(history, key=lambda t: t.start):
            mark = f"[{_secs(turn.start, origin)}] " if cfg.render_times else ""
            user = Message("user", mark + turn.user)
            assistant = Message("assistant", turn.assistant)
            if cfg.history == "said":
                costs.append(self.count_tokens(user.content) + 1)
            else:
                costs.append(self._cost(user.content) + self._cost(assistant.content))
            turns.append((user, assistant))
        first = history_start(costs, cfg.budget_tokens - used)
        used += sum(costs[first:])
        kept = turns[first:]
        said = [user.content for user, _ in kept] if cfg.history == "said" else []
        used += current_cost - max(current_cost, cfg.utterance_reserve)

        if said:
            system += "\n\n" + _SAID_HEADER + "\n" + "\n".join(said)
        facts = self.render_facts(chosen, origin, memory)
        if cfg.facts == "system" and facts:
            system += "\n" + facts
        messages: list[Message] = [Message("system", system)]
        messages.extend(self._examples())
        if cfg.history == "chat":
            for pair in kept:
                messages.extend(pair)
        if cfg.facts == "before" and facts:
            messages.append(Message("system", facts))
        image = keyframe if cfg.attach_keyframe else None
        messages.append(
            Message(
                "user", self.render_utterance(ordered, chosen, origin, memory), image_jpeg=image
            )
        )
        return FusedContext(
            messages=tuple(messages),
            prompt_tokens=used,
            observations=tuple(sorted(chosen, key=lambda o: o.pts)),
            keyframe_jpeg=keyframe,
            history_turns=len(kept),
            words_dropped=words_dropped,
        )
