"""One turn's lineage as spans (pure).

A turn's marks (shared clock, ns; see :class:`~streamkit.core.metrics.Lineage`) become a
:class:`TurnTrace`: a root span ``turn`` from its first mark to its last, and child spans

- ``speech``: start of speech (``asr.vad_start``) → end of speech (``speech.stopped`` sent);
- ``final_transcript``: end of speech → the final transcript (``asr.final``, or sent);
- ``prompt``: final transcript → first token (``lm.first_token``: prompt evaluation + TTFT);
- ``first_token``: first token → its ``response.delta`` written to the socket;
- ``first_audio``: end of speech → first spoken audio (``tts.first_audio``, when a TTS runs);
- ``answer``: first token → the answer complete (``lm.done``);
- ``sent``: ``response.done`` written to the socket (a zero-length span at that time).

Only the spans whose marks exist are made. The server hands each finished turn to
:func:`trace_edge`'s DROP_NEWEST edge: telemetry never slows media, and a full edge drops
(and counts) traces instead of waiting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streamkit.core.clock import Nanos
from streamkit.core.edge import Edge, Policy

__all__ = ["Span", "TurnTrace", "trace_edge", "trace_of"]

END_OF_SPEECH = ("sent.speech.stopped", "asr.vad_stop")
FINAL = ("asr.final", "sent.transcript.final")
DONE = "sent.response.done"


@dataclass(frozen=True, slots=True)
class Span:
    """A named interval on the shared clock (ns)."""

    name: str
    start: Nanos
    end: Nanos


@dataclass(frozen=True, slots=True)
class TurnTrace:
    """One finished turn: the root span, its children, and every raw mark (ns)."""

    session_id: str
    utterance_id: str
    root: Span
    spans: tuple[Span, ...]
    marks: tuple[tuple[str, Nanos], ...]

    def span(self, name: str) -> Span | None:
        return next((s for s in self.spans if s.name == name), None)


def _first(marks: Mapping[str, Nanos], names: Sequence[str]) -> Nanos | None:
    found = [marks[n] for n in names if n in marks]
    return min(found) if found else None


def trace_of(session_id: str, uid: str, marks: Mapping[str, Nanos]) -> TurnTrace | None:
    """The spans of one utterance's marks (None when there are none)."""
    if not marks:
        return None
    start = marks.get("asr.vad_start", min(marks.values()))
    eos = _first(marks, END_OF_SPEECH)
    final = _first(marks, FINAL)
    token = marks.get("lm.first_token")
    spans: list[Span] = []

    def add(name: str, a: Nanos | None, b: Nanos | None) -> None:
        if a is not None and b is not None and b >= a:
            spans.append(Span(name, a, b))

    add("speech", start, eos)
    if final is not None and eos is not None:
        add("final_transcript", eos, max(final, eos))
    add("prompt", max(final, eos or final) if final is not None else eos, token)
    add("first_token", token, marks.get("sent.response.delta"))
    add("first_audio", eos, _first(marks, ("tts.first_audio", "sent.response.audio")))
    add("answer", token, marks.get("lm.done"))
    add("sent", marks.get(DONE), marks.get(DONE))
    root = Span("turn", min(start, min(marks.values())), max(marks.values()))
    ordered = tuple(sorted(marks.items(), key=lambda kv: kv[1]))
    return TurnTrace(session_id, uid, root, tuple(spans), ordered)


def trace_edge(capacity: int = 256) -> Edge[TurnTrace]:
    """The worker's trace edge: bounded, DROP_NEWEST (drops are counted in its stats)."""
    return Edge("telemetry.traces", capacity, Policy.DROP_NEWEST)
