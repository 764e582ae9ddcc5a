"""Typed event payloads that flow between stages and out to clients.

These are the meaning-bearing outputs of the pipeline. They travel as ``Packet`` payloads
(stream names in :data:`STREAMS`), with ``Packet.lineage`` set to the utterance id where one
applies. All times are shared-clock ``Nanos``. They are ``msgspec`` structs so the transport
codec can encode them without hand-written converters; each one is owned by one module:

- transcript events: :mod:`streamkit.asr.stage` (VAD + streaming ASR)
- :class:`Observation`: :mod:`streamkit.vision.stage`
- response events: :mod:`streamkit.lm`
- spoken-answer events (:class:`ResponseAudio`, :class:`ResponseAudioDone`): :mod:`streamkit.tts`
"""

from __future__ import annotations

from typing import Literal

import msgspec

from streamkit.core.clock import Nanos

__all__ = [
    "STREAMS",
    "Detection",
    "ErrorEvent",
    "Event",
    "Observation",
    "ResponseAudio",
    "ResponseAudioDone",
    "ResponseDelta",
    "ResponseDone",
    "ResponseHeld",
    "SpeechStarted",
    "SpeechStopped",
    "TranscriptFinal",
    "TranscriptPartial",
    "TurnUpdate",
    "Word",
]

STREAMS = {
    "speech": "VAD boundaries (SpeechStarted / SpeechStopped)",
    "transcript": "TranscriptPartial / TranscriptFinal",
    "vision": "Observation",
    "response": "ResponseDelta / ResponseDone (ResponseHeld: internal, to the voice only)",
    "speech_out": "ResponseAudio / ResponseAudioDone (the spoken answer, PCM16, shared clock)",
    "error": "ErrorEvent",
    "turn": "TurnUpdate (end-of-turn detector: pause / resume / end; internal, not to clients)",
}


class Word(msgspec.Struct, frozen=True):
    """One recognised word; ``start``/``end`` on the shared clock (ns), ``probability`` 0–1."""

    text: str
    start: Nanos
    end: Nanos
    probability: float


class SpeechStarted(msgspec.Struct, frozen=True, tag="speech.started"):
    """Voice activity began at ``t`` (ns) — the start of utterance ``utterance_id``."""

    utterance_id: str
    t: Nanos


class SpeechStopped(msgspec.Struct, frozen=True, tag="speech.stopped"):
    """Voice activity ended at ``t`` (ns, end of the last voiced audio, before hangover)."""

    utterance_id: str
    t: Nanos


class TranscriptPartial(msgspec.Struct, frozen=True, tag="transcript.partial"):
    """The unstable tail of an utterance; supersedes the previous partial of that utterance.

    ``committed`` is the text already final in this utterance (for display), ``text`` the
    tentative continuation, ``words`` the tentative words with their times.
    """

    utterance_id: str
    text: str
    words: list[Word]
    committed: str = ""


class TranscriptFinal(msgspec.Struct, frozen=True, tag="transcript.final"):
    """Committed words of an utterance. ``is_last`` marks the end of the utterance.

    An utterance yields one or more finals (words are committed as soon as successive
    hypotheses agree); their concatenation is the utterance's transcript.
    """

    utterance_id: str
    text: str
    words: list[Word]
    start: Nanos
    end: Nanos
    is_last: bool = True


class TurnUpdate(msgspec.Struct, frozen=True, tag="turn.update"):
    """The end-of-turn detector's view of utterance ``utterance_id`` (stream ``"turn"``).

    ``state``: ``pause`` — silent since ``t`` (ns): the turn may be over (the responder may
    start an answer but releases nothing yet); ``resume`` — speech again at ``t``: the turn
    goes on; ``end`` — the turn is over, its speech ended at ``t``, decided by ``reason``
    (``model``: P(complete) = ``probability``; ``silence``). The ``SpeechStopped`` and the last
    ``TranscriptFinal`` of the utterance follow an ``end``.
    """

    utterance_id: str
    state: Literal["pause", "resume", "end"]
    t: Nanos
    reason: str = ""
    probability: float | None = None


class Detection(msgspec.Struct, frozen=True):
    """One detected object: ``label`` (face, person, qr…), score, box (x, y, w, h) in pixels."""

    label: str
    score: float
    box: tuple[int, int, int, int]
    text: str = ""


class Observation(msgspec.Struct, frozen=True, tag="vision.observation"):
    """What the vision encoder saw in the keyframe captured at ``pts`` (ns).

    ``motion`` and ``change`` are fractions (0–1) of the image that moved since the previous
    frame the encoder saw and since the previous keyframe; ``brightness`` is 0–1;
    ``colours`` are dominant colour names, largest first.
    """

    pts: Nanos
    detections: list[Detection]
    motion: float
    brightness: float
    colours: list[str]
    width: int
    height: int
    summary: str = ""
    keyframe_jpeg: bytes | None = None
    change: float = 0.0


class ResponseDelta(msgspec.Struct, frozen=True, tag="response.delta"):
    """A piece of the streamed answer to ``utterance_id`` (``index`` counts deltas from 0)."""

    response_id: str
    utterance_id: str
    text: str
    index: int


class ResponseDone(msgspec.Struct, frozen=True, tag="response.done"):
    """The answer finished (or was ``cancelled`` by barge-in / client request)."""

    response_id: str
    utterance_id: str
    text: str
    cancelled: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ResponseHeld(msgspec.Struct, frozen=True, tag="response.held"):
    """Internal, never sent to a client: the text a held speculation ``response_id`` has
    generated so far (``complete``: the whole answer), so a voice can prepare its first
    piece before the turn is confirmed. The TTS stage consumes it; the answer itself still
    comes as :class:`ResponseDelta` once released, or never (the speculation was dropped)."""

    response_id: str
    utterance_id: str
    text: str
    complete: bool = False


class ResponseAudio(msgspec.Struct, frozen=True, tag="response.audio"):
    """One chunk of the spoken answer ``response_id``: mono PCM16LE at ``sample_rate`` Hz.

    ``pts`` is when the chunk is meant to start playing on the shared clock (ns): chunks of one
    answer follow each other (``pts`` of the next = this ``pts`` + its duration) unless the voice
    fell behind, which leaves a gap. They are sent up to the TTS stage's lead ahead of ``pts``.
    ``index`` counts the answer's chunks from 0. ``text`` holds the words whose (estimated)
    audio starts in this chunk, so the chunks' texts joined are the words spoken.
    """

    response_id: str
    utterance_id: str
    index: int
    pts: Nanos
    sample_rate: int
    pcm: bytes
    text: str = ""

    @property
    def duration(self) -> Nanos:
        """Playout time of ``pcm`` (ns)."""
        return (len(self.pcm) // 2) * 1_000_000_000 // self.sample_rate


class ResponseAudioDone(msgspec.Struct, frozen=True, tag="response.audio.done"):
    """The voice of ``response_id`` stopped: all of it was spoken, or it was ``cancelled``
    (barge-in, ``response.cancel``, a newer answer) and no later chunk of it will come.

    ``text`` is what the user heard: the answer cut after the last word whose audio had
    started playing (``played_ns`` of audio, until ``end`` on the shared clock). A client
    that holds queued audio of this answer drops it when ``cancelled``.
    """

    response_id: str
    utterance_id: str
    text: str
    played_ns: Nanos
    end: Nanos
    cancelled: bool = False
    reason: str = ""


class ErrorEvent(msgspec.Struct, frozen=True, tag="error"):
    """Something went wrong without ending the session: ``code`` is stable, ``message`` human."""

    code: str
    message: str


Event = (
    SpeechStarted
    | SpeechStopped
    | TranscriptPartial
    | TranscriptFinal
    | Observation
    | ResponseDelta
    | ResponseDone
    | ResponseAudio
    | ResponseAudioDone
    | ErrorEvent
    | TurnUpdate
)
"""Any event payload."""
