"""What a codec asks of a session: protocol-neutral commands (pure data).

A codec (:mod:`streamkit.transport.protocol` for ``/ws``,
:mod:`streamkit.transport.codecs.realtime` for ``/v1/realtime``) turns wire messages into
these commands and the session carries them out (:meth:`Session.handle`); the session never
sees a wire name. Media and the ``/ws`` messages keep their decoded types from
:mod:`streamkit.transport.protocol` (``AudioAppend`` carries its sample rate; the client
source resamples). The commands here are the conversation-level ones a Realtime client
needs on top of them. Results the codec may need come back from :meth:`Session.handle`:
the utterance id an ``InputCommit`` finalises (or None), whether a ``ResponseCancel``
stopped anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamkit.core.clock import Nanos

__all__ = [
    "AddText",
    "ClearInput",
    "ConfigureTurns",
    "ImageIn",
    "Respond",
]


@dataclass(frozen=True, slots=True)
class ConfigureTurns:
    """How turns are taken and answered.

    ``auto_answer``: answer each end of speech without being asked (server VAD with
    ``create_response``); False: answer only on :class:`Respond`. ``silence_ms`` /
    ``threshold``: the VAD's end-of-utterance silence (with an end-of-turn policy, the
    longest a turn waits; None: the policy's own, as the server or the session's ``turn``
    set it, which a Realtime ``semantic_vad`` of ``medium`` eagerness asks for) and speech
    threshold (applied before the pipeline's first audio). ``instructions``: the system
    prompt (None: the pipeline's default). ``max_tokens``: the answer length cap (None: the
    pipeline's default). ``audio_out``: speak the answers (when the pipeline has a voice).
    """

    auto_answer: bool = True
    silence_ms: int | None = 500
    threshold: float = 0.5
    instructions: str | None = None
    max_tokens: int | None = None
    audio_out: bool = False


@dataclass(frozen=True, slots=True)
class AddText:
    """A typed user message: joins the context of the next answer (does not start one)."""

    text: str
    role: str = "user"


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer now from the context so far.

    ``wait_for``: utterance ids whose final transcript the answer must include (a commit
    whose transcript is still being decoded). ``instructions`` / ``max_tokens`` apply to this
    answer only.
    """

    wait_for: tuple[str, ...] = ()
    instructions: str | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ClearInput:
    """Discard the input not yet committed (utterances ``discard``: left out of answers)."""

    discard: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageIn:
    """A still image (JPEG or PNG bytes) seen at ``pts`` (shared clock, ns; None: arrival)."""

    data: bytes
    pts: Nanos | None = None
