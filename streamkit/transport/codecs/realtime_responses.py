"""The Realtime codec's response lifecycle, text and spoken (pure: no I/O, no clock).

:class:`Responses` opens a response at ``response.create`` (or at the first event of an answer
the pipeline started by itself: server VAD) and closes it with the events of the SUBSET's
§6.2 table, in that order: ``response.created`` → ``output_item.added`` →
``conversation.item.added`` → ``content_part.added`` → deltas → ``….done`` →
``content_part.done`` → ``output_item.done`` → ``conversation.item.done`` → ``response.done``.

A *text* response carries ``response.output_text.delta`` per LM delta and closes at the
pipeline's ``response.done``. A *spoken* one (the session's ``output_modalities`` is
``["audio"]`` and the pipeline has a voice) carries ``response.output_audio.delta`` (base64
PCM16 resampled to 24 kHz with a streaming soxr resampler per response) and
``response.output_audio_transcript.delta`` (the words whose audio starts in that chunk), and
closes at the voice's end (``ResponseAudioDone``): its transcript is what was spoken.
"""

from __future__ import annotations

import base64
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamkit.core.events import ResponseAudio, ResponseAudioDone, ResponseDelta, ResponseDone
from streamkit.transport.codecs.realtime_shapes import AUDIO_RATE, assistant_item
from streamkit.transport.codecs.realtime_state import Emit, Items

__all__ = ["Responses"]

_KEPT = 64


@dataclass
class _Response:
    id: str
    item_id: str
    audio: bool = False
    pipeline_id: str | None = None
    opened: bool = False
    text: list[str] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)
    cancel_requested: bool = False
    text_done: tuple[bool, int, int] | None = None  # (cancelled, prompt, output tokens)
    resampler: Any = None
    rate: int = 0


class Responses:
    """The response lifecycle of one connection (see the module docstring).

    ``audio``: responses opened from now on are spoken (set from the session's modalities).
    """

    def __init__(self, emit: Emit, prefix: str, items: Items) -> None:
        self._emit = emit
        self._prefix = prefix
        self._items = items
        self._ids = itertools.count(1)
        self.active: _Response | None = None
        self.audio = False
        self._closed: OrderedDict[str, None] = OrderedDict()
        self.conversation_id = f"conv_{prefix.removeprefix('resp_').rstrip('_')}"

    def _response(self, r: _Response, status: str, output: list[Any]) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": r.id,
            "status": status,
            "status_details": None,
            "output": output,
            "output_modalities": ["audio"] if r.audio else ["text"],
            "conversation_id": self.conversation_id,
            "usage": None,
        }

    def request(self) -> _Response:
        """``response.create`` was accepted: open a response for the next answer."""
        n = next(self._ids)
        r = _Response(f"{self._prefix}{n:03d}", self._items.new_id(), self.audio)
        self.active = r
        self._emit({"type": "response.created", "response": self._response(r, "in_progress", [])})
        return r

    def _bind(self, pipeline_id: str) -> _Response | None:
        if pipeline_id in self._closed:
            return None
        r = self.active
        if r is not None and r.pipeline_id == pipeline_id:
            return r
        if r is None or r.pipeline_id is not None:
            r = self.request()  # an answer the pipeline started itself (server VAD)
        r.pipeline_id = pipeline_id
        return r

    def _where(self, r: _Response) -> dict[str, Any]:
        return {"response_id": r.id, "item_id": r.item_id, "output_index": 0, "content_index": 0}

    def _open(self, r: _Response) -> None:
        if r.opened:
            return
        r.opened = True
        item = self._items.remember(assistant_item(r.item_id, None, "in_progress"))
        where = {"response_id": r.id, "output_index": 0}
        self._emit({"type": "response.output_item.added", "item": item, **where})
        previous, self._items.last_id = self._items.last_id, r.item_id
        self._emit({"type": "conversation.item.added", "item": item, "previous_item_id": previous})
        part = {"type": "audio", "transcript": ""} if r.audio else {"type": "text", "text": ""}
        self._emit({"type": "response.content_part.added", "part": part, **self._where(r)})

    # -- from the pipeline ---------------------------------------------------------------

    def event(
        self, event: ResponseDelta | ResponseDone | ResponseAudio | ResponseAudioDone
    ) -> None:
        """One of the pipeline's answer events, to the method that handles it."""
        if isinstance(event, ResponseDelta):
            self.delta(event.response_id, event.text)
        elif isinstance(event, ResponseDone):
            self.done(
                event.response_id,
                event.text,
                event.cancelled,
                event.prompt_tokens,
                event.completion_tokens,
            )
        elif isinstance(event, ResponseAudio):
            self.audio_chunk(event.response_id, event.pcm, event.sample_rate, event.text)
        else:
            self.audio_done(event.response_id, event.cancelled)

    def delta(self, pipeline_id: str, text: str) -> None:
        r = self._bind(pipeline_id)
        if r is None or not text:
            return
        self._open(r)
        r.text.append(text)
        if not r.audio:
            self._emit({"type": "response.output_text.delta", "delta": text, **self._where(r)})

    def audio_chunk(self, pipeline_id: str, pcm: bytes, rate: int, text: str) -> None:
        """One chunk of the spoken answer (PCM16LE at ``rate``), ``text`` starting in it."""
        r = self._bind(pipeline_id)
        if r is None or not r.audio:
            return
        self._open(r)
        samples = np.frombuffer(pcm, dtype="<i2")
        if rate != AUDIO_RATE:
            if r.resampler is None or r.rate != rate:
                import soxr

                r.resampler = soxr.ResampleStream(rate, AUDIO_RATE, 1, "int16", "HQ")
                r.rate = rate
            samples = np.asarray(r.resampler.resample_chunk(samples), dtype="<i2").reshape(-1)
        if len(samples):
            data = base64.b64encode(samples.astype("<i2", copy=False).tobytes()).decode()
            self._emit({"type": "response.output_audio.delta", "delta": data, **self._where(r)})
        if text:
            if r.spoken and not text[:1].isspace() and not r.spoken[-1][-1:].isspace():
                text = " " + text
            r.spoken.append(text)
            self._emit(
                {"type": "response.output_audio_transcript.delta", "delta": text, **self._where(r)}
            )

    def done(
        self, pipeline_id: str, text: str, cancelled: bool, prompt_tokens: int, output_tokens: int
    ) -> None:
        """The answer's text is complete (a spoken one closes at :meth:`audio_done`)."""
        r = self._bind(pipeline_id)
        if r is None:
            return
        r.text_done = (cancelled, prompt_tokens, output_tokens)
        if r.audio and text.strip():
            return  # the voice is still speaking it
        self._close(r, cancelled)

    def audio_done(self, pipeline_id: str, cancelled: bool) -> None:
        """The voice of the answer stopped (all spoken, or cut: barge-in, cancel)."""
        r = self._bind(pipeline_id)
        if r is not None and r.audio:
            self._close(r, cancelled or bool(r.text_done and r.text_done[0]))

    def _close(self, r: _Response, cancelled: bool) -> None:
        self._open(r)
        where = self._where(r)
        if r.audio:
            if r.resampler is not None:
                tail = np.asarray(r.resampler.resample_chunk(np.zeros(0, "<i2"), last=True))
                if len(tail):
                    data = base64.b64encode(tail.astype("<i2").tobytes()).decode()
                    self._emit({"type": "response.output_audio.delta", "delta": data, **where})
            transcript = "".join(r.spoken)
            self._emit({"type": "response.output_audio.done", **where})
            self._emit(
                {"type": "response.output_audio_transcript.done", "transcript": transcript, **where}
            )
            part: dict[str, Any] = {"type": "audio", "transcript": transcript}
            content: dict[str, Any] = {"type": "output_audio", "transcript": transcript}
        else:
            full = "".join(r.text)
            self._emit({"type": "response.output_text.done", "text": full, **where})
            part = {"type": "text", "text": full}
            content = {"type": "output_text", "text": full}
        self._emit({"type": "response.content_part.done", "part": part, **where})
        item = assistant_item(r.item_id, None, "incomplete" if cancelled else "completed")
        item["content"] = [content]
        self._items.remember(item)
        self._emit(
            {
                "type": "response.output_item.done",
                "item": item,
                "response_id": r.id,
                "output_index": 0,
            }
        )
        self._emit({"type": "conversation.item.done", "item": item})
        response = self._response(r, "cancelled" if cancelled else "completed", [item])
        if cancelled:
            reason = "client_cancelled" if r.cancel_requested else "turn_detected"
            response["status_details"] = {"type": "cancelled", "reason": reason}
        _, prompt, output = r.text_done or (cancelled, 0, 0)
        response["usage"] = {
            "input_tokens": prompt,
            "output_tokens": output,
            "total_tokens": prompt + output,
        }
        self._finish(r, response)

    # -- from the client -----------------------------------------------------------------

    def cancelled(self, stopped: bool) -> None:
        """The session ran the cancel: ``stopped`` False means no answer was running."""
        r = self.active
        if r is None or stopped or r.pipeline_id is not None:
            return  # the pipeline's own response.done (or the voice's end) closes it
        response = self._response(r, "cancelled", [])
        response["status_details"] = {"type": "cancelled", "reason": "client_cancelled"}
        self._finish(r, response)

    def _finish(self, r: _Response, response: dict[str, Any]) -> None:
        self._emit({"type": "response.done", "response": response})
        if r.pipeline_id is not None:
            self._closed[r.pipeline_id] = None
            while len(self._closed) > _KEPT:
                self._closed.popitem(last=False)
        if self.active is r:
            self.active = None
