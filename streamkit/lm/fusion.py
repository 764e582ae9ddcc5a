"""The fusion context builder (pure): what was said and what was seen, on one clock.

:class:`FusionBuilder.build` renders

1. the system prompt,
2. the conversation history (earlier turns, each stamped with its time),
3. the current utterance's words with their times, preceded by the camera observations
   aligned to the utterance's time span,

into chat :class:`~streamkit.lm.backend.Message` objects under a token budget. No I/O, no
clock: every time is an argument (shared-clock ``Nanos``), rendered as seconds since
``origin`` (the session's base time). Everything is ordered on the shared clock, whatever
order it arrived in.

Observation choice: an observation *during* the utterance beats one before it, which beats
one after it, and nearer beats farther — so "what am I holding" is answered from the frame
seen while the user spoke, not from the latest frame. The keyframe JPEG sent to
vision-language backends is the one of the best-ranked observation that has one.

Budget (tokens, counted with the pluggable ``count_tokens``): the system prompt and the
utterance are kept; history is dropped oldest first, then observations farthest first, then
the utterance's oldest words. The layout is append-friendly (stable prefix first, the words
last), so a prompt prefilled while the user speaks shares its prefix with the final one; the
history is chosen against a fixed reserve for the current message (``utterance_reserve``), so
the kept history — the cached prefix — does not change as the utterance grows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from streamkit.clock import NS_PER_S, Nanos
from streamkit.events import Observation, Word
from streamkit.lm.backend import Message, TokenCounter

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "FusedContext",
    "FusionBuilder",
    "FusionConfig",
    "Turn",
    "describe_observation",
    "rank_observations",
]

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful voice assistant that can hear the user and see through their camera. "
    "Lines in square brackets are times in seconds. Answer in one or two short sentences."
)

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
        system_prompt: the stable first message.
        budget_tokens: maximum prompt tokens (as counted by the builder's counter).
        max_observations: at most this many camera observations per utterance.
        lookback_ns: observations up to this long before the utterance are eligible.
        lookahead_ns: observations up to this long after the utterance are eligible.
        pause_ns: a new time mark is written before a word after a pause this long.
        message_overhead: tokens a chat template adds per message (role markers).
        utterance_reserve: tokens set aside for the current message when choosing history, so
            the kept history (the cached prefix) does not change while the utterance grows.
        attach_keyframe: put the chosen keyframe JPEG on the user message.
        history: ``"chat"`` renders earlier turns as user/assistant messages; ``"said"`` lists
            only what the user said (with times) at the end of the system message — the
            default, because very small models (SmolLM2-135M) copy their own earlier answers
            verbatim instead of answering; use ``"chat"`` with capable models.
    """

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    budget_tokens: int = 480
    max_observations: int = 2
    lookback_ns: Nanos = 5 * NS_PER_S
    lookahead_ns: Nanos = NS_PER_S // 2
    pause_ns: Nanos = 800_000_000
    message_overhead: int = 5
    utterance_reserve: int = 120
    attach_keyframe: bool = False
    history: Literal["chat", "said"] = "said"


@dataclass(frozen=True, slots=True)
class FusedContext:
    """The builder's result: messages to send plus what went into them."""

    messages: tuple[Message, ...]
    prompt_tokens: int
    observations: tuple[Observation, ...]
    keyframe_jpeg: bytes | None
    history_turns: int
    words_dropped: int


def _secs(t: Nanos, origin: Nanos) -> str:
    return f"{(t - origin) / NS_PER_S:.1f}"


def describe_observation(obs: Observation) -> str:
    """A short English description of an observation (its ``summary`` when it has one)."""
    if obs.summary:
        return obs.summary
    parts: list[str] = []
    counts = Counter(d.label for d in obs.detections)
    for label, n in sorted(counts.items()):
        parts.append(f"{n} {label}{'s' if n > 1 else ''}")
    for det in obs.detections:
        if det.text:
            parts.append(f'{det.label} text "{det.text}"')
    if not counts:
        parts.append("nothing detected")
    if obs.colours:
        parts.append("colours " + ", ".join(obs.colours))
    parts.append(f"motion {obs.motion:.2f}")
    parts.append(f"brightness {obs.brightness:.2f}")
    return "; ".join(parts)


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
    """Eligible observations for the span ``start``–``end`` (ns), best first."""
    eligible = [
        obs
        for obs in observations
        if start - config.lookback_ns <= obs.pts <= end + config.lookahead_ns
    ]
    eligible.sort(key=lambda obs: (*_distance(obs, start, end), -obs.pts))
    return eligible


def _render_words(words: Sequence[Word], origin: Nanos, pause_ns: Nanos) -> str:
    out: list[str] = []
    previous_end: Nanos | None = None
    for word in words:
        text = word.text.strip()
        if not text:
            continue
        if previous_end is None or word.start - previous_end >= pause_ns:
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

    def render_utterance(
        self,
        words: Sequence[Word],
        observations: Sequence[Observation],
        origin: Nanos,
    ) -> str:
        """The user message: camera lines (by time), then the words with their times."""
        lines = [
            f"[{_secs(obs.pts, origin)}] camera: {describe_observation(obs)}"
            for obs in sorted(observations, key=lambda o: o.pts)
        ]
        lines.append("User: " + _render_words(words, origin, self.config.pause_ns))
        return "\n".join(lines)

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
        as 0.0 s. Raises ``ValueError`` when there is nothing to answer.
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

        fixed = self._cost(cfg.system_prompt)
        words_dropped = 0
        current = self.render_utterance(ordered, chosen, origin)
        # Over budget with no history at all: drop observations (farthest first), then words.
        while fixed + self._cost(current) > cfg.budget_tokens and chosen:
            chosen = chosen[:-1]
            current = self.render_utterance(ordered, chosen, origin)
        while fixed + self._cost(current) > cfg.budget_tokens and len(ordered) > 1:
            ordered = ordered[1:]
            words_dropped += 1
            current = self.render_utterance(ordered, chosen, origin)
        current_cost = self._cost(current)
        used = fixed + max(current_cost, cfg.utterance_reserve)

        kept: list[tuple[Message, Message]] = []
        said: list[str] = []
        if cfg.history == "said" and history:
            used += self.count_tokens("\n\n" + _SAID_HEADER)
        for turn in sorted(history, key=lambda t: t.start, reverse=True):
            user = Message("user", f"[{_secs(turn.start, origin)}] User: {turn.user}")
            assistant = Message("assistant", turn.assistant)
            if cfg.history == "said":
                line = f"[{_secs(turn.start, origin)}] {turn.user}"
                cost = self.count_tokens(line) + 1
            else:
                line = ""
                cost = self._cost(user.content) + self._cost(assistant.content)
            if used + cost > cfg.budget_tokens:
                break
            used += cost
            kept.append((user, assistant))
            said.append(line)
        kept.reverse()
        said.reverse()
        used += current_cost - max(current_cost, cfg.utterance_reserve)

        system = cfg.system_prompt
        if said:
            system += "\n\n" + _SAID_HEADER + "\n" + "\n".join(said)
        messages: list[Message] = [Message("system", system)]
        if cfg.history == "chat":
            for pair in kept:
                messages.extend(pair)
        image = keyframe if cfg.attach_keyframe else None
        messages.append(Message("user", current, image_jpeg=image))
        return FusedContext(
            messages=tuple(messages),
            prompt_tokens=used,
            observations=tuple(sorted(chosen, key=lambda o: o.pts)),
            keyframe_jpeg=keyframe,
            history_turns=len(kept),
            words_dropped=words_dropped,
        )
