"""OpenAI Realtime (GA) codec for ``/v1/realtime``: stateful, sans-I/O (no socket, no clock).

Client events in → session commands (:mod:`streamkit.transport.commands`, plus the media and
control types of :mod:`streamkit.transport.protocol`); pipeline events out → Realtime server
events, with the whole response lifecycle and the user items. The contract is
``docs/realtime-subset.md`` (event shapes, order, error codes); ``docs/realtime.md`` is the
user's guide.

How a connection drives it (:mod:`streamkit.transport.connection`):

1. :meth:`RealtimeCodec.created` → the first event;
2. every frame → :meth:`RealtimeCodec.decode` → commands and events to send; each command's
   outcome (its return value, or a :class:`~streamkit.transport.protocol.ProtocolError`)
   goes back through :meth:`RealtimeCodec.result`, which answers the client event (one
   ``error`` carrying its ``event_id``, or the success events);
3. every pipeline event → :meth:`RealtimeCodec.encode`.

Times: ``audio_start_ms`` / ``audio_end_ms`` are on the session's audio timeline (ms of
audio appended); the codec stamps each append's ``capture_ns`` on that timeline and
``audio_ms`` (set by the connection: the client source's pts → timeline map) maps the
pipeline's shared-clock times back. Extension: a binary frame in the ``/ws`` media format
(``video.frame``, a JPEG) is a live camera frame (``docs/realtime.md``).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any, Final

import msgspec

from streamkit.core.clock import NS_PER_MS, NS_PER_S, Nanos
from streamkit.core.events import (
    ErrorEvent,
    ResponseAudio,
    ResponseAudioDone,
    ResponseDelta,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
)
from streamkit.transport.codecs.realtime_parse import (
    cancel_problem,
    commit_problem,
    parse_append,
    parse_event,
    parse_item,
    parse_response,
    session_turns,
)
from streamkit.transport.codecs.realtime_responses import Responses
from streamkit.transport.codecs.realtime_shapes import (
    AUDIO_RATE,
    CLIENT_EVENTS,
    DEFAULT_SESSION,
    MAX_EVENT_BYTES,
    UNSUPPORTED_EVENTS,
    Problem,
    check,
    merge,
)
from streamkit.transport.codecs.realtime_state import Items
from streamkit.transport.codecs.v1 import decode_binary
from streamkit.transport.commands import AddText, ClearInput, ConfigureTurns, ImageIn, Respond
from streamkit.transport.outbox import OutItem
from streamkit.transport.protocol import (
    AUDIO_FORMAT_PCM16,
    KIND_AUDIO,
    AudioAppend,
    FrameHeader,
    InputCommit,
    ProtocolError,
    ResponseCancel,
    SessionConfig,
    VideoFrameIn,
)

__all__ = ["CLIENT_EVENTS", "MAX_EVENT_BYTES", "UNSUPPORTED_EVENTS", "RealtimeCodec"]

_encoder = msgspec.json.Encoder()

Out = list[Any]
"""What :meth:`RealtimeCodec.decode` returns: commands and :class:`OutItem` s, in order."""


class RealtimeCodec:
    """One ``/v1/realtime`` connection's protocol state (see the module docstring).

    Args:
        session_id: a prefix for the ids of items and responses (``session.created`` shows
            the session's own id).
        model: the ``?model=`` the client asked for (echoed in ``session.model``).
        audio_out: the pipeline speaks its answers (``output_modalities`` may be audio);
            :meth:`started` reads it from the pipeline's controls.
        max_event_bytes: the size limit of one client event.
    """

    start_at_connect = True  # answers are ready sooner; the voice is known before session.update

    def __init__(
        self,
        session_id: str | None = None,
        model: str | None = None,
        *,
        audio_out: bool = False,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        session_id = session_id or uuid.uuid4().hex[:12]
        self.session_id = session_id
        self.audio_out = audio_out
        self.max_event_bytes = max_event_bytes
        self.session = merge(DEFAULT_SESSION, {"id": f"sess_{session_id}"})
        if model:
            self.session["model"] = model
        self.audio_ms: Callable[[Nanos], int] | None = None
        self._event_ids = itertools.count(1)
        self._client_event_id: str | None = None
        self._pending_session: dict[str, Any] | None = None
        self._seq = 0
        self.samples_appended = 0
        self._buffered = 0  # samples since the last commit / clear
        self._batch_left = 0  # commands of one conversation.item.create still to run
        self.items = Items(self._emit, f"item_{session_id}_")
        self.responses = Responses(self._emit, f"resp_{session_id}_", self.items)
        self._out: list[OutItem] = []

    # -- settings the session reads ------------------------------------------------------

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        audio_in: dict[str, Any] = self.session["audio"]["input"]
        td: dict[str, Any] | None = audio_in.get("turn_detection")
        return td

    @property
    def transcribing(self) -> bool:
        return self.session["audio"]["input"].get("transcription") is not None

    @property
    def speaking(self) -> bool:
        """Answers are spoken (``output_modalities`` holds ``audio``)."""
        return "audio" in self.session.get("output_modalities", ())

    def turns(self) -> ConfigureTurns:
        """The :class:`ConfigureTurns` command the current settings mean."""
        return session_turns(self.session)

    # -- output --------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        event["event_id"] = f"event_{next(self._event_ids):04d}"
        kind = str(event["type"])
        code = event["error"].get("code") if kind == "error" else None
        self._out.append(OutItem(kind, _encoder.encode(event), code=code))

    def _take(self) -> list[OutItem]:
        out, self._out = self._out, []
        return out

    def _problem(self, problem: Problem) -> None:
        self._error(problem[0], problem[2], problem[1])

    def _error(
        self, code: str, message: str, param: str | None = None, kind: str = "invalid_request_error"
    ) -> None:
        error = {
            "type": kind,
            "code": code,
            "message": message,
            "param": param,
            "event_id": self._client_event_id,
        }
        self._emit({"type": "error", "error": error})

    def refuse(self, problem: ProtocolError) -> list[OutItem]:
        """An ``error`` for a frame the connection refused (rate limit) or a session problem."""
        kind = "server_error" if problem.code == "pipeline_error" else "invalid_request_error"
        self._error(problem.code, problem.message, None, kind)
        return self._take()

    # -- the session's side --------------------------------------------------------------

    def configure(self, config: SessionConfig) -> SessionConfig:
        """The session's settings for a Realtime client: media from the client, video on
        (``input_image`` and the camera extension), no partials or metrics (not Realtime
        events)."""
        return msgspec.structs.replace(
            config, source="client", video=True, partials=False, metrics_interval_ms=0
        )

    def started(self, session: Any) -> None:
        """The pipeline was built: map its times back to the audio timeline, learn its voice."""
        source = session.source
        if source is not None:
            self.audio_ms = lambda t: source.input_ns(t) // NS_PER_MS
        self.audio_out = bool(getattr(session.controls, "speaks", False))

    def created(
        self,
        session_id: str | None = None,
        now: int = 0,
        config: SessionConfig | None = None,
        pipelines: Any = (),
    ) -> list[OutItem]:
        """``session.created``: the first event of the connection."""
        if session_id:
            self.session["id"] = f"sess_{session_id}"
        self._emit({"type": "session.created", "session": self.session})
        return self._take()

    # -- client → server -----------------------------------------------------------------

    def decode(self, message: str | bytes) -> Out:
        """One client frame → commands to run and events to send (in order)."""
        self._client_event_id = None
        if isinstance(message, bytes | bytearray | memoryview):
            return self._binary(bytes(message))
        value = parse_event(message.encode("utf-8", "surrogatepass"), self.max_event_bytes)
        if isinstance(value, tuple):
            self._problem(value)
            return list(self._take())
        event_id = value.get("event_id")
        self._client_event_id = event_id if isinstance(event_id, str) else None
        kind = value.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            if kind in UNSUPPORTED_EVENTS:
                self._error("unsupported_event", f"{kind!r} is not supported here", "type")
            else:
                self._error("invalid_event", f"Unknown event type {str(kind)[:80]!r}.", "type")
            return list(self._take())
        out: Out = list(self._take())
        command = handler(self, value)
        out.extend(self._take())
        if isinstance(command, list):
            out.extend(command)
        elif command is not None:
            out.append(command)
        return out

    def _binary(self, data: bytes) -> Out:
        decoded = decode_binary(data)
        if isinstance(decoded, VideoFrameIn):
            return [decoded]  # the live-camera extension
        if isinstance(decoded, ProtocolError):
            self._error("invalid_event", f"binary frame: {decoded.message}")
        else:
            self._error("invalid_event", "binary frames carry video only; audio goes in appends")
        return list(self._take())

    def _session_update(self, event: dict[str, Any]) -> Any:
        update = event.get("session")
        if not isinstance(update, dict):
            self._error("invalid_value", "session.update needs a 'session' object", "session")
            return None
        update = {k: v for k, v in update.items() if k not in ("id", "object", "model")}
        merged = merge(self.session, update)
        problem = check(merged, self.audio_out)
        if problem is not None:
            self._problem(problem)
            return None
        self._pending_session = merged
        return session_turns(merged)

    def _append(self, event: dict[str, Any]) -> Any:
        samples = parse_append(event.get("audio"))
        if samples is None or isinstance(samples, tuple):
            if samples is not None:
                self._problem(samples)
            return None
        capture = self.samples_appended * NS_PER_S // AUDIO_RATE
        header = FrameHeader(KIND_AUDIO, AUDIO_FORMAT_PCM16, 1, AUDIO_RATE, self._seq, capture)
        self._seq += 1
        self.samples_appended += len(samples)
        self._buffered += len(samples)
        return AudioAppend(header, samples)

    def _commit(self, event: dict[str, Any]) -> Any:
        problem = commit_problem(self._buffered)
        if problem is not None:
            self._problem(problem)
            return None
        return InputCommit()

    def _clear(self, event: dict[str, Any]) -> Any:
        return ClearInput(self.items.buffer_uids())

    def _item_create(self, event: dict[str, Any]) -> Any:
        item = parse_item(event.get("item"))
        if isinstance(item, tuple):
            self._problem(item)
            return None
        self.items.pending_create = (item.id or self.items.new_id(), item.role, item.content)
        commands: list[Any] = [ImageIn(image) for image in item.images]
        if item.texts:
            commands.append(AddText(" ".join(item.texts), item.role))
        self._batch_left = len(commands)
        return commands

    def _item_retrieve(self, event: dict[str, Any]) -> Any:
        problem = self.items.retrieve(event.get("item_id"))
        if problem is not None:
            self._problem(problem)
        return None

    def _item_truncate(self, event: dict[str, Any]) -> Any:
        """A client stopped playing a spoken answer at ``audio_end_ms``: acknowledge, and stop
        the voice if that answer is still being spoken (what was heard stays in the history:
        the voice reports it)."""
        item_id = event.get("item_id")
        problem = self.items.truncate(item_id, event.get("audio_end_ms"))
        if problem is not None:
            self._problem(problem)
            return None
        active = self.responses.active
        if active is not None and active.item_id == item_id:
            active.cancel_requested = True
            return ResponseCancel(active.id)
        return None

    def _response_create(self, event: dict[str, Any]) -> Any:
        params = parse_response(event.get("response"), self.audio_out)
        if isinstance(params, tuple):
            self._problem(params)
            return None
        if self.responses.active is not None:
            self._error(
                "conversation_already_has_active_response",
                f"response {self.responses.active.id} is in progress",
            )
            return None
        return Respond(self.items.awaiting(), params.instructions, params.max_tokens)

    def _response_cancel(self, event: dict[str, Any]) -> Any:
        active = self.responses.active
        problem = cancel_problem(active.id if active else None, event.get("response_id"))
        if problem is not None:
            self._problem(problem)
            return None
        assert active is not None  # cancel_problem refuses when no response is active
        active.cancel_requested = True
        return ResponseCancel(active.id)

    # -- outcomes of commands ------------------------------------------------------------

    def result(self, command: Any, value: Any) -> list[OutItem]:
        """The session ran ``command``: its return value, or the ProtocolError it refused with."""
        if isinstance(value, ProtocolError):
            kind = "server_error" if value.code == "pipeline_error" else "invalid_request_error"
            self._error(value.code, value.message, None, kind)
            if isinstance(command, AddText | ImageIn):
                self.items.pending_create = None
            return self._take()
        if isinstance(command, ConfigureTurns) and self._pending_session is not None:
            self.session, self._pending_session = self._pending_session, None
            self.items.transcribing = self.transcribing
            self.responses.audio = self.speaking
            self._emit({"type": "session.updated", "session": self.session})
        elif isinstance(command, InputCommit):
            self._buffered = 0
            uids = value if isinstance(value, tuple) else (value,) if isinstance(value, str) else ()
            self.items.commit(uids)
        elif isinstance(command, ClearInput):
            self._buffered = 0
            self.items.clear()
            self._emit({"type": "input_audio_buffer.cleared"})
        elif isinstance(command, AddText | ImageIn):
            self._batch_left -= 1
            created = self.items.pending_create
            if created is not None and self._batch_left <= 0:
                self.items.pending_create = None
                self.items.create(*created)
        elif isinstance(command, Respond):
            self.responses.request()
        elif isinstance(command, ResponseCancel):
            self.responses.cancelled(bool(value))
        return self._take()

    # -- pipeline → client ---------------------------------------------------------------

    def encode(self, event: msgspec.Struct, lineage: str | None = None) -> list[OutItem]:
        """One pipeline event → the Realtime events it means (often none)."""
        vad = self.turn_detection
        if isinstance(event, SpeechStarted):
            padding = int((vad or {}).get("prefix_padding_ms") or 0)
            start = max(0, self._ms(event.t) - padding)
            self.items.speech_started(event.utterance_id, start, vad is not None)
        elif isinstance(event, SpeechStopped):
            self.items.speech_stopped(event.utterance_id, self._ms(event.t), vad is not None)
        elif isinstance(event, TranscriptFinal):
            seconds = max(0, event.end - event.start) / NS_PER_S
            self.items.final(event.utterance_id, event.text, event.is_last, seconds)
        elif isinstance(event, ResponseDelta | ResponseDone | ResponseAudio | ResponseAudioDone):
            self.responses.event(event)
        elif isinstance(event, ErrorEvent):
            self._error(event.code, event.message, None, "server_error")
        return self._take()

    def _ms(self, t: Nanos) -> int:
        if self.audio_ms is not None:
            return max(0, self.audio_ms(t))
        return max(0, t // NS_PER_MS)


_HANDLERS: Final[dict[str, Callable[[RealtimeCodec, dict[str, Any]], Any]]] = {
    "session.update": RealtimeCodec._session_update,
    "input_audio_buffer.append": RealtimeCodec._append,
    "input_audio_buffer.commit": RealtimeCodec._commit,
    "input_audio_buffer.clear": RealtimeCodec._clear,
    "conversation.item.create": RealtimeCodec._item_create,
    "conversation.item.retrieve": RealtimeCodec._item_retrieve,
    "conversation.item.truncate": RealtimeCodec._item_truncate,
    "response.create": RealtimeCodec._response_create,
    "response.cancel": RealtimeCodec._response_cancel,
}
