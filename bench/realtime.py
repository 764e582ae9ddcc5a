"""The same spoken turns through ``/ws`` and through ``/v1/realtime``: is the Realtime path as fast?

One ``streamkit serve`` (the ``assistant`` pipeline, real models) runs as a subprocess. For each
of ``--turns`` real utterances from tests/data, one ``/ws`` session and one ``/v1/realtime``
session (server VAD, transcription on) are run one after the other, alternating which goes
first, each streaming ``--lead-s`` of silence, the utterance and ``--gap-s`` of silence in
100 ms chunks at real-time pace: ``/ws`` as binary 16 kHz PCM16 frames, ``/v1/realtime`` as
``input_audio_buffer.append`` events of base64 24 kHz PCM16 (the same audio, resampled once on
the client with soxr beforehand, as a 24 kHz microphone would give it). Both are timed from the
same instant: when the client sent the last sample of the utterance (end of speech, on the
client's clock), to

- *transcript complete*: ``/ws`` the last ``transcript.final`` (``is_last``) of the utterance;
  ``/v1/realtime`` ``conversation.item.input_audio_transcription.completed``;
- *first text*: ``/ws`` the first ``response.delta``; ``/v1/realtime`` the first
  ``response.output_text.delta``.

A second table measures, in this process, what the Realtime encoding costs per second of
audio (CPU ms, 100 ms chunks over 30 s of speech): the client's base64 + JSON, the server
codec's JSON + base64 decode + int16→float, and the soxr 24→16 kHz resampling in the client
source, next to ``/ws``'s binary frame decode.

Last line: ``realtime: turns=<n> ws_eos_to_transcript_p50_ms=<n> rt_eos_to_transcript_p50_ms=<n>
ws_eos_to_first_text_p50_ms=<n> rt_eos_to_first_text_p50_ms=<n> rt_cost_ms_per_audio_s=<x>``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import pctl, print_table  # noqa: E402
from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock  # noqa: E402
from streamkit.core.metrics import MetricsRegistry  # noqa: E402
from streamkit.sources.media_io import load_audio  # noqa: E402
from streamkit.transport.codecs.realtime import RealtimeCodec  # noqa: E402
from streamkit.transport.codecs.v1 import decode_binary, encode_audio  # noqa: E402
from streamkit.transport.protocol import AudioAppend  # noqa: E402
from streamkit.transport.ws_source import WsSource  # noqa: E402

FILES = [
    "speech/utterances/pocketsphinx_goforward/goforward.wav",
    "speech/utterances/deepspeech/new-home-in-the-stars-16k.wav",
    "speech/utterances/cmu_arctic/cmu_arctic_us_aew_a0003.wav",
    "speech/utterances/librivox_sense_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav",
    "speech/utterances/ljspeech/LJ001-0002.wav",
    "speech/utterances/cmu_arctic/arctic_a0010_pyroomacoustics.wav",
]
CHUNK_S = 0.1


def _pcm16(samples: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()


def _to_24k(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import soxr

    return np.asarray(soxr.resample(samples, 16_000, 24_000, "HQ"), dtype=np.float32)


class _Paced:
    """Sends chunks at real-time pace against one anchor; records when speech ended."""

    def __init__(self) -> None:
        self.clock = LoopClock()
        self.start = self.clock.now()
        self.sent_s = 0.0
        self.eos_ns: int | None = None

    async def pace(self, seconds: float) -> None:
        self.sent_s += seconds
        await self.clock.sleep_until(self.start + round(self.sent_s * NS_PER_S))


Marks = dict[str, Callable[[dict[str, Any]], bool]]
"""Latency marks of one turn: name → which event ends it (the first such event counts)."""

V1_MARKS: Marks = {
    "stopped": lambda e: e["type"] == "speech.stopped",
    "transcript": lambda e: e["type"] == "transcript.final" and bool(e.get("is_last")),
    "first_text": lambda e: e["type"] == "response.delta",
}
REALTIME_MARKS: Marks = {
    "stopped": lambda e: e["type"] == "input_audio_buffer.speech_stopped",
    "transcript": lambda e: e["type"].endswith("input_audio_transcription.completed"),
    "first_text": lambda e: e["type"] == "response.output_text.delta",
}


async def _read_marks(ws: Any, paced: _Paced, marks: Marks, out: dict[str, float]) -> None:
    """Fill ``out`` with each mark's delay after the end of speech (ms), then return."""
    async for message in ws:
        event = json.loads(message)
        now = paced.clock.now()
        if paced.eos_ns is None:
            continue
        for name, ends in marks.items():
            if name not in out and ends(event):
                out[name] = (now - paced.eos_ns) / NS_PER_MS
        if len(out) == len(marks):
            return


async def _turn(
    ws: Any,
    paced: _Paced,
    marks: Marks,
    send: Callable[[npt.NDArray[np.float32]], Awaitable[None]],
    rate: int,
    audio: npt.NDArray[np.float32],
    lead_s: float,
    gap_s: float,
) -> dict[str, float]:
    """Silence, the utterance, silence (``send`` paces each 100 ms piece), then silence until
    every mark came or 30 s passed; the end of speech is when the utterance's last piece went."""
    out: dict[str, float] = {}
    async with asyncio.TaskGroup() as group:
        task = group.create_task(_read_marks(ws, paced, marks, out))
        step = int(rate * CHUNK_S)
        lead = np.zeros(int(lead_s * rate), np.float32)
        tail = np.zeros(int(gap_s * rate), np.float32)
        for part, is_speech in ((lead, False), (audio, True), (tail, False)):
            for i in range(0, len(part), step):
                await send(part[i : i + step])
            if is_speech:
                paced.eos_ns = paced.clock.now()
        while not task.done() and paced.sent_s < lead_s + len(audio) / rate + 30:
            await send(np.zeros(step, np.float32))
        task.cancel()
    return out


async def _ws_turn(
    url: str, audio: npt.NDArray[np.float32], lead_s: float, gap_s: float
) -> dict[str, float]:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        await ws.send(
            json.dumps(
                {"type": "session.update", "pipeline": "assistant", "metrics_interval_ms": 0}
            )
        )
        paced = _Paced()
        seqs = itertools.count()

        async def send(piece: npt.NDArray[np.float32]) -> None:
            await ws.send(encode_audio(piece, next(seqs), round(paced.sent_s * NS_PER_S)))
            await paced.pace(len(piece) / 16_000)

        return await _turn(ws, paced, V1_MARKS, send, 16_000, audio, lead_s, gap_s)


async def _rt_turn(
    url: str, audio24: npt.NDArray[np.float32], lead_s: float, gap_s: float
) -> dict[str, float]:
    from websockets.asyncio.client import connect

    headers = {"Authorization": "Bearer sk-local"}
    async with connect(url, additional_headers=headers, max_size=None) as ws:
        update = {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {
                "input": {
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                }
            },
        }
        await ws.send(json.dumps({"type": "session.update", "session": update}))
        paced = _Paced()

        async def send(piece: npt.NDArray[np.float32]) -> None:
            data = base64.b64encode(_pcm16(piece)).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": data}))
            await paced.pace(len(piece) / 24_000)

        return await _turn(ws, paced, REALTIME_MARKS, send, 24_000, audio24, lead_s, gap_s)


def _costs(audio: npt.NDArray[np.float32]) -> list[list[Any]]:
    """CPU ms per audio second of each encoding step (this process, 100 ms chunks)."""
    audio24 = _to_24k(audio)
    seconds = len(audio) / 16_000
    rows: list[list[Any]] = []

    def timed(label: str, fn: Any, items: list[Any]) -> list[Any]:
        t0 = time.process_time()
        results = [fn(x) for x in items]
        ms = (time.process_time() - t0) * 1000 / seconds
        rows.append([label, len(items), round(seconds, 1), ms])
        return results

    step24, step16 = int(24_000 * CHUNK_S), int(16_000 * CHUNK_S)
    chunks24 = [audio24[i : i + step24] for i in range(0, len(audio24), step24)]
    chunks16 = [audio[i : i + step16] for i in range(0, len(audio), step16)]
    frames = timed(
        "rt client: int16 + base64 + JSON",
        lambda c: json.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(_pcm16(c)).decode()}
        ),
        chunks24,
    )
    codec = RealtimeCodec("bench")
    decoded = timed(
        "rt server: JSON + base64 + int16→float (codec)", lambda f: codec.decode(f)[0], frames
    )
    source = WsSource(MetricsRegistry(), video=False, audio_capacity=100_000)
    timed(
        "rt server: soxr 24→16 kHz (client source)",
        lambda a: source._resample(a.samples, 24_000),
        decoded,
    )
    binary = [encode_audio(c, i, 0) for i, c in enumerate(chunks16)]
    timed("ws server: binary frame decode", lambda b: decode_binary(b), binary)
    assert all(isinstance(d, AudioAppend) for d in decoded)
    return rows


async def _run(args: argparse.Namespace, port: int) -> list[list[Any]]:
    data = Path(args.data)
    rows: list[list[Any]] = []
    for i in range(args.turns):
        path = data / FILES[i % len(FILES)]
        audio = load_audio(path)
        audio24 = _to_24k(audio)
        ws_url = f"ws://127.0.0.1:{port}/ws"
        rt_url = f"ws://127.0.0.1:{port}/v1/realtime?model=streamkit"
        runs = [
            ("ws", _ws_turn(ws_url, audio, args.lead_s, args.gap_s)),
            ("realtime", _rt_turn(rt_url, audio24, args.lead_s, args.gap_s)),
        ]
        if i % 2:
            runs.reverse()
        for name, turn in runs:
            out = await turn
            rows.append(
                [
                    i,
                    path.name[:28],
                    name,
                    out.get("stopped", float("nan")),
                    out.get("transcript", float("nan")),
                    out.get("first_text", float("nan")),
                ]
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--data", default=str(ROOT / "tests" / "data"))
    parser.add_argument("--lead-s", type=float, default=0.5)
    parser.add_argument("--gap-s", type=float, default=1.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        cmd = [
            sys.executable,
            "-m",
            "streamkit",
            "serve",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ]
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            waited = 0
            while not port_file.exists() or not port_file.read_text():
                if server.poll() is not None or waited > 3000:
                    err = server.stderr.read().decode() if server.stderr else ""
                    print(f"server did not start: {err[-2000:]}", file=sys.stderr)
                    return 1
                asyncio.run(LoopClock().sleep(100 * NS_PER_MS))
                waited += 1
            load0 = Path("/proc/loadavg").read_text().split()[0]
            rows = asyncio.run(_run(args, int(port_file.read_text())))
            load1 = Path("/proc/loadavg").read_text().split()[0]
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(10)
            if server.poll() is None:
                server.kill()

    print_table(
        f"realtime: the same turns through /ws and /v1/realtime, one server (assistant); "
        f"{os.cpu_count()} CPUs shared with other work, load average {load0} → {load1}",
        [
            "turn",
            "file",
            "endpoint",
            "eos_to_stopped_ms",
            "eos_to_transcript_ms",
            "eos_to_first_text_ms",
        ],
        rows,
    )
    speech = np.concatenate([load_audio(Path(args.data) / f) for f in FILES])
    speech = np.tile(speech, int(np.ceil(30 * 16_000 / len(speech))))[: 30 * 16_000]
    costs = _costs(speech)
    print_table(
        "encoding cost per second of audio (this process)",
        ["step", "chunks", "audio_s", "cpu_ms_per_audio_s"],
        costs,
    )

    def p50(endpoint: str, column: int) -> float:
        return pctl([r[column] for r in rows if r[2] == endpoint and r[column] == r[column]], 50)

    rt_cost = sum(r[3] for r in costs[:3])
    fmt = lambda v: "nan" if v != v else str(round(v))  # noqa: E731
    print(
        f"realtime: turns={args.turns} ws_eos_to_transcript_p50_ms={fmt(p50('ws', 4))} "
        f"rt_eos_to_transcript_p50_ms={fmt(p50('realtime', 4))} "
        f"ws_eos_to_first_text_p50_ms={fmt(p50('ws', 5))} "
        f"rt_eos_to_first_text_p50_ms={fmt(p50('realtime', 5))} "
        f"rt_cost_ms_per_audio_s={rt_cost:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
