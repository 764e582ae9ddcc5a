"""Protocol clients for bench/peers.py: one per peer, each streams one file at real-time pace
and records what arrived when (bench scripts only).

Every client sends 16 kHz mono in 20 ms frames, each frame when its last sample would have
been captured (anchor pacing on :class:`~streamkit.core.clock.LoopClock`), then ``tail_s`` of
silence, then the peer's end-of-audio signal, and waits for the server to finish. Times in
:class:`Trace` are seconds after the capture time of the file's first sample.

Voice pipelines (streamkit's assistant, Pipecat) may answer more than once per file: a turn
ended at a mid-sentence pause gets an answer, and the rest of the sentence another. Each
answer's first token is kept (``Trace.answers``); a voice client given the file's end of
speech (``eos_s``) waits for an answer that starts after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streamkit.core.clock import NS_PER_S, LoopClock
from streamkit.core.events import ResponseDelta, TranscriptFinal, TranscriptPartial
from streamkit.transport.client import Client, Received

__all__ = ["CLIENTS", "Trace", "stream_file"]

RATE = 16_000
STEP = RATE // 50  # 20 ms


@dataclass
class Trace:
    """What one client saw for one file (times: s after the file's first sample)."""

    commits: list[tuple[float, list[str]]] = field(default_factory=list)
    first_text: float | None = None  # first partial or committed text
    answers: list[float] = field(default_factory=list)  # first token of each answer (voice)
    answer: str = ""
    error: str = ""

    def text(self) -> str:
        return " ".join(w for _, words in self.commits for w in words)


class Pacer:
    """Real-time pacing of one stream on the loop clock."""

    def __init__(self) -> None:
        self.clock = LoopClock()
        self.t0 = self.clock.now()

    def rel(self) -> float:
        return (self.clock.now() - self.t0) / NS_PER_S

    async def frames(
        self,
        audio: npt.NDArray[np.float32],
        send: Callable[[npt.NDArray[np.float32]], Awaitable[None]],
    ) -> None:
        for begin in range(0, len(audio), STEP):
            chunk = audio[begin : begin + STEP]
            await self.clock.sleep_until(self.t0 + (begin + len(chunk)) * NS_PER_S // RATE)
            await send(chunk)


def _pcm16(chunk: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(chunk, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _with_tail(audio: npt.NDArray[np.float32], tail_s: float) -> npt.NDArray[np.float32]:
    return np.concatenate([audio, np.zeros(round(tail_s * RATE), np.float32)])


async def _recv_json(ws: ClientConnection, timeout_s: float) -> dict[str, Any] | None:
    try:
        message = await asyncio.wait_for(ws.recv(), timeout_s)
    except (TimeoutError, ConnectionClosed):
        return None
    if isinstance(message, bytes):
        return {}
    try:
        data = json.loads(message)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _answer_started(trace: Trace, at: float, eos_s: float | None, done: asyncio.Event) -> None:
    trace.answers.append(at)
    trace.answer += " | " if trace.answer else ""  # where one answer's text ends
    if eos_s is None or at >= eos_s:
        done.set()


async def _stream_streamkit(
    url: str,
    audio: npt.NDArray[np.float32],
    tail_s: float,
    pipeline: str,
    wait_s: float,
    eos_s: float | None,
) -> Trace:
    trace = Trace()
    pacer = Pacer()
    done = asyncio.Event()
    answers: set[str] = set()

    def seen(item: Received) -> None:
        event = item.event
        at = (item.at - pacer.t0) / NS_PER_S
        if isinstance(event, TranscriptFinal):
            if event.words:
                trace.commits.append((at, [w.text for w in event.words]))
            if event.is_last and pipeline != "assistant":
                done.set()
        if isinstance(event, (TranscriptFinal, TranscriptPartial)) and event.text.strip():
            trace.first_text = at if trace.first_text is None else trace.first_text
        if isinstance(event, ResponseDelta):
            if event.response_id not in answers:  # a new answer: its first token
                answers.add(event.response_id)
                _answer_started(trace, at, eos_s, done)
            trace.answer += event.text

    async with Client.connect(url, on_event=seen) as client:
        await client.update(pipeline=pipeline)
        pacer = Pacer()  # t0 = the first frame's capture time

        async def send(chunk: npt.NDArray[np.float32]) -> None:
            capture = pacer.t0 + client.samples_sent * NS_PER_S // RATE
            await client.send_audio(chunk, capture)

        await pacer.frames(_with_tail(audio, tail_s), send)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), wait_s)
        if pipeline == "assistant":  # the answer's first token is what is measured
            await LoopClock().sleep(NS_PER_S // 2)
    return trace


async def _stream_wlk(
    url: str, audio: npt.NDArray[np.float32], tail_s: float, wait_s: float
) -> Trace:
    """WhisperLiveKit ``/asr`` (``--pcm-input``): s16le frames in, JSON snapshots out; the
    committed text is the ``lines``, the unstable tail ``buffer_transcription``."""
    trace = Trace()
    async with connect(url, max_size=2**24, open_timeout=30) as ws:
        config = await _recv_json(ws, 30)
        if config is None or not config.get("useAudioWorklet"):
            trace.error = f"server not in PCM mode: {config}"
            return trace
        pacer = Pacer()
        committed: list[str] = []

        async def reader() -> None:
            nonlocal committed
            while True:
                data = await _recv_json(ws, wait_s + 600)
                if data is None or data.get("type") == "ready_to_stop":
                    return
                lines = data.get("lines") or []
                words = " ".join(str(line.get("text") or "") for line in lines).split()
                at = pacer.rel()
                if len(words) > len(committed):
                    trace.commits.append((at, words[len(committed) :]))
                    committed = words
                if (words or str(data.get("buffer_transcription") or "").strip()) and (
                    trace.first_text is None
                ):
                    trace.first_text = at

        async with asyncio.TaskGroup() as group:
            task = group.create_task(reader())
            await pacer.frames(_with_tail(audio, tail_s), lambda c: ws.send(_pcm16(c)))
            await ws.send(b"")
            try:
                await asyncio.wait_for(asyncio.shield(task), wait_s)
            except TimeoutError:
                trace.error = f"no ready_to_stop {wait_s:.0f} s after the audio"
                task.cancel()
    return trace


async def _stream_whisperlive(
    url: str, audio: npt.NDArray[np.float32], tail_s: float, wait_s: float, model: str
) -> Trace:
    """WhisperLive: JSON options, ``SERVER_READY``, float32 frames, ``END_OF_AUDIO``; the
    server resends its last segments, and a segment is committed once ``completed``."""
    trace = Trace()
    async with connect(url, max_size=2**24, open_timeout=30) as ws:
        options = {
            "uid": str(uuid.uuid4()),
            "language": "en",
            "task": "transcribe",
            "model": model,
            "use_vad": True,
        }
        await ws.send(json.dumps(options))
        while True:
            data = await _recv_json(ws, 120)
            if data is None:
                trace.error = "no SERVER_READY"
                return trace
            if data.get("message") == "SERVER_READY":
                break
            if data.get("status") in ("WAIT", "ERROR"):
                trace.error = f"server said {data}"
                return trace
        pacer = Pacer()
        done_keys: set[str] = set()
        pending: dict[str, str] = {}  # start → text of segments not completed yet

        async def reader() -> None:
            while True:
                data = await _recv_json(ws, wait_s + 600)
                if data is None or data.get("message") == "DISCONNECT":
                    return
                at = pacer.rel()
                if data.get("segments"):
                    pending.clear()  # only the latest message's open segments count
                for seg in data.get("segments") or []:
                    text = str(seg.get("text") or "").strip()
                    if text and trace.first_text is None:
                        trace.first_text = at
                    key = f"{float(seg.get('start', 0)):.3f}"
                    if seg.get("completed") and text and key not in done_keys:
                        done_keys.add(key)
                        trace.commits.append((at, text.split()))
                    elif text and key not in done_keys:
                        pending[key] = text

        async with asyncio.TaskGroup() as group:
            task = group.create_task(reader())
            await pacer.frames(
                _with_tail(audio, tail_s), lambda c: ws.send(c.astype("<f4").tobytes())
            )
            await ws.send(b"END_OF_AUDIO")
            ended = pacer.rel()
            try:
                await asyncio.wait_for(asyncio.shield(task), wait_s)
            except TimeoutError:
                task.cancel()  # it keeps the socket open: what arrived so far counts
        # WhisperLive completes the last segment only once its text repeated ~10 times; at
        # the end of the stream a client takes what it shows as final (at END_OF_AUDIO).
        for key in sorted(pending, key=float):
            if key not in done_keys:
                trace.commits.append((ended, pending[key].split()))
    return trace


async def _stream_pipecat(
    url: str, audio: npt.NDArray[np.float32], tail_s: float, wait_s: float, eos_s: float | None
) -> Trace:
    """The Pipecat voice server (bench/_peer_pipecat.py): PCM16 frames in; JSON
    ``transcript`` / ``interim`` / ``response`` / ``token`` events out."""
    trace = Trace()
    async with connect(url, max_size=2**24, open_timeout=30) as ws:
        pacer = Pacer()
        got_token = asyncio.Event()
        new_answer = True

        async def reader() -> None:
            nonlocal new_answer
            while True:
                data = await _recv_json(ws, wait_s + 600)
                if data is None:
                    return
                at = pacer.rel()
                kind, text = data.get("type"), str(data.get("text") or "")
                if kind == "response" and trace.commits:
                    new_answer = True
                if kind in ("transcript", "interim") and text.strip() and trace.first_text is None:
                    trace.first_text = at
                if kind == "transcript" and text.strip():
                    trace.commits.append((at, text.split()))
                if kind == "token" and trace.commits:  # the pipeline outlives a client: a
                    # token before this client's transcript ends an earlier answer
                    if new_answer:
                        new_answer = False
                        _answer_started(trace, at, eos_s, got_token)
                    trace.answer += text

        async with asyncio.TaskGroup() as group:
            task = group.create_task(reader())
            await pacer.frames(_with_tail(audio, tail_s), lambda c: ws.send(_pcm16(c)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(got_token.wait(), wait_s)
            await LoopClock().sleep(NS_PER_S // 2)
            task.cancel()
    return trace


StreamFn = Callable[[str, npt.NDArray[np.float32], float, float, float | None], Awaitable[Trace]]


def _clients(model: str) -> dict[str, StreamFn]:
    return {
        "streamkit": lambda u, a, t, w, e: _stream_streamkit(u, a, t, "captions", w, e),
        "streamkit-assistant": lambda u, a, t, w, e: _stream_streamkit(u, a, t, "assistant", w, e),
        "wlk": lambda u, a, t, w, e: _stream_wlk(u, a, t, w),
        "wlk-vac": lambda u, a, t, w, e: _stream_wlk(u, a, t, w),
        "whisperlive": lambda u, a, t, w, e: _stream_whisperlive(u, a, t, w, model),
        "pipecat": _stream_pipecat,
    }


CLIENTS = _clients


async def stream_file(
    peer: str,
    url: str,
    audio: npt.NDArray[np.float32],
    model: str,
    tail_s: float,
    wait_s: float,
    eos_s: float | None = None,
) -> Trace:
    """Stream ``audio`` to ``peer`` at ``url``; a failure becomes ``Trace.error``. A voice
    pipeline's client waits (at most ``wait_s``) for an answer starting at or after ``eos_s``
    (s; None: any answer)."""
    try:
        return await _clients(model)[peer](url, audio, tail_s, wait_s, eos_s)
    except Exception as error:  # a bench row says what failed; the other peers still run
        return Trace(error=f"{type(error).__name__}: {error}")
