"""Voice to voice: real spoken questions through a real ``streamkit serve``, spoken answers back.

The server runs as a subprocess (``streamkit serve --pipeline assistant --tts piper``: the
streaming ASR, the bundled language model and the bundled Piper voice). One client streams real
utterances from ``--data`` at real-time pace (20 ms PCM16 frames), each followed by silence
until the answer has been spoken, and records a **stereo file on its own clock**: left = the
user's audio as sent (at its capture times), right = the assistant's audio as received (each
frame placed at its arrival, back to back, cut where ``response.audio.done`` says cancelled —
what a client that plays on arrival and flushes on cancel outputs). Every ``--barge-every``-th
question (default: every one) another speaker talks over the answer ~0.5 s after its first
audio: 3 s of a real utterance from its onset, six sources in turn (``BARGES``); that
utterance's own answer is then cancelled by the client (``response.cancel``) before the next
question, and frames are matched to questions by their utterance ids.

Measured per answered question:

- **v2v (audio)**: end of the user's speech → first assistant audio, both found from the
  recording's energy (20 ms frames over -40 dBFS), as SignalWire's latency checker does;
- **v2v (events)**: end of speech (energy) → arrival of the first ``response.audio`` frame,
  with a per-stage breakdown that sums to it: end of turn (``speech.stopped`` arrives), final
  transcript (``transcript.final`` is_last arrives), first token (first ``response.delta``
  arrives), first audio chunk (its playout pts on the server, mapped to the client clock),
  sent (its arrival);
- **barge-in stop**: the user's onset (energy, left) → the end of the assistant's audio in the
  recording (right), split into onset → the VAD's start (``speech.started`` ``t``), → its
  arrival (the VAD's report + the echo gate's decision + transport), → the arrival of
  ``response.audio.done`` (cancelled); missed and false barge-ins are counted (an answer that
  ended on its own before the VAD's ``speech.started`` arrived is noted, not missed: nothing
  was left to stop);
- baseline in the same run: end of speech → first text token (what a text-only client gets).

Server side (from the session's last ``metrics``): the voice's real-time factor (counters
``tts.piper.synth_ns`` ÷ ``tts.piper.audio_ns``: synthesis compute ÷ audio, whole session)
and ``tts.piper.first_audio`` p50 (first answer delta → first audio frame sent).

Last line: ``voice: v2v_p50_ms=<n> v2v_p90_ms=<n> bargein_stop_p50_ms=<n> tts_rtf=<x>
first_audio_ms=<n>`` (v2v from the audio).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from bench._common import pctl, print_table
from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock, Nanos
from streamkit.core.events import (
    ResponseAudioDone,
    ResponseDelta,
    SpeechStarted,
    SpeechStopped,
    TranscriptFinal,
)
from streamkit.core.media import ASR_SAMPLE_RATE, samples_to_ns
from streamkit.sources.media_io import load_audio
from streamkit.transport.client import Client, Received
from streamkit.transport.protocol import MetricsEvent, OutputAudio

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "speech/utterances/pocketsphinx_goforward/goforward.wav",
    "speech/utterances/cmu_arctic/cmu_arctic_us_aew_a0003.wav",
    "speech/utterances/ljspeech/LJ001-0002.wav",
    "speech/utterances/librivox_sense_sensibility/sense_and_sensibility_01_austen_64kb-0880.wav",
    "speech/utterances/sr_english/english.wav",
    "speech/utterances/cmu_arctic/arctic_a0010_pyroomacoustics.wav",
]
BARGES = [  # who talks over the answer: six other speakers/sources (BARGE_S from the onset)
    "speech/utterances/jfk/jfk.wav",
    "speech/utterances/deepspeech/new-home-in-the-stars-16k.wav",
    "speech/utterances/picovoice/leopard_test_librispeech_1272-128104-0000.wav",
    "speech/utterances/librivox_sense_sensibility/sense_and_sensibility_01_austen_64kb-0930.wav",
    "speech/utterances/ljspeech/LJ001-0002.wav",
    "speech/utterances/cmu_arctic/cmu_arctic_us_aew_a0003.wav",
]
BARGE_S = 3.0
FRAME = ASR_SAMPLE_RATE // 50  # 20 ms
THRESHOLD = 10 ** (-40 / 20)


@dataclass
class Turn:
    question: str
    span: tuple[int, int]  # left-channel samples of the question
    barge_span: tuple[int, int] | None = None
    barge: str = ""
    uids: set[str] = field(default_factory=set)  # the question's utterances (speech.started)
    barge_uids: set[str] = field(default_factory=set)
    response_id: str | None = None
    first_frame_at: Nanos | None = None
    first_frame_pts: Nanos | None = None
    cancelled_at: Nanos | None = None


@dataclass
class Recorder:
    """Both channels on the client clock (16 kHz); ``t0`` = local time of sample 0."""

    t0: Nanos
    left: list[npt.NDArray[np.float32]] = field(default_factory=list)
    right: dict[int, npt.NDArray[np.float32]] = field(default_factory=dict)
    right_end: int = 0
    cut: dict[str, int] = field(default_factory=dict)
    placed: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def index(self, t: Nanos) -> int:
        return max(0, (t - self.t0) * ASR_SAMPLE_RATE // NS_PER_S)

    def on_audio(self, frame: OutputAudio, at: Nanos) -> None:
        if frame.response_id in self.cut:
            return
        samples = soxr.resample(frame.samples, frame.header.sample_rate, ASR_SAMPLE_RATE)
        start = max(self.index(at), self.right_end)
        self.right[start] = samples.astype(np.float32)
        self.right_end = start + len(samples)
        self.placed.setdefault(frame.response_id, []).append((start, len(samples)))

    def on_cancel(self, response_id: str, at: Nanos) -> None:
        self.cut[response_id] = self.index(at)

    def stereo(self) -> npt.NDArray[np.float32]:
        left = np.concatenate(self.left) if self.left else np.zeros(0, np.float32)
        n = max(len(left), self.right_end)
        out = np.zeros((n, 2), np.float32)
        out[: len(left), 0] = left
        cuts = {s: self.cut[rid] for rid, spans in self.placed.items() if rid in self.cut
                for s, _ in spans}
        for start, samples in self.right.items():
            end = cuts.get(start)
            if end is not None:
                samples = samples[: max(0, end - start)]
            out[start : start + len(samples), 1] = samples
        return out


def _frames_db(x: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    n = len(x) // FRAME
    rms = np.sqrt(np.mean(x[: n * FRAME].reshape(n, FRAME) ** 2, axis=1)) if n else np.zeros(0)
    return np.asarray(rms > THRESHOLD)


def _last_voiced(x: npt.NDArray[np.float32], a: int, b: int) -> int | None:
    voiced = np.nonzero(_frames_db(x[a:b]))[0]
    return a + (int(voiced[-1]) + 1) * FRAME if len(voiced) else None


def _first_voiced(x: npt.NDArray[np.float32], a: int, b: int) -> int | None:
    voiced = np.nonzero(_frames_db(x[a:b]))[0]
    return a + int(voiced[0]) * FRAME if len(voiced) else None


def _from_onset(audio: npt.NDArray[np.float32], seconds: float) -> npt.NDArray[np.float32]:
    """``seconds`` of ``audio`` from 100 ms before its first voiced frame (so the user starts
    talking when the bench says, not after a file's leading silence)."""
    first = _first_voiced(audio, 0, len(audio)) or 0
    start = max(0, first - ASR_SAMPLE_RATE // 10)
    return audio[start : start + round(seconds * ASR_SAMPLE_RATE)]


async def _silence_until(client: Client, rec: Recorder, done: Any, timeout_s: float) -> None:
    deadline = client.clock.now() + round(timeout_s * NS_PER_S)
    zeros = np.zeros(FRAME, np.float32)
    while not done() and client.clock.now() < deadline:
        rec.left.append(zeros)
        await client.stream_audio(zeros)


async def _send(client: Client, rec: Recorder, audio: npt.NDArray[np.float32]) -> tuple[int, int]:
    start = client.samples_sent
    rec.left.append(audio)
    await client.stream_audio(audio)
    return start, start + len(audio)


async def _session(url: str, data: Path, args: argparse.Namespace) -> tuple[
        Client, Recorder, list[Turn], MetricsEvent | None]:
    turns: list[Turn] = []
    metrics: list[MetricsEvent] = []
    rid_uid: dict[str, str] = {}  # response id → the utterance it answers (response.delta)
    audio_done: set[str] = set()
    async with Client.connect(url) as client:
        t0 = client.start_audio_clock()
        rec = Recorder(t0)
        current: list[Turn] = []
        listening: list[str] = [""]  # "question" / "barge": whose speech.started this is

        def on_audio(frame: OutputAudio, at: Nanos) -> None:
            rec.on_audio(frame, at)
            turn = current[0] if current else None
            if (turn is not None and turn.response_id is None
                    and rid_uid.get(frame.response_id) in turn.uids):
                turn.response_id, turn.first_frame_at = frame.response_id, at
                turn.first_frame_pts = frame.header.capture_ns

        def on_event(item: Received) -> None:
            event = item.event
            turn = current[0] if current else None
            if isinstance(event, SpeechStarted) and turn is not None:
                if listening[0] == "question":
                    turn.uids.add(event.utterance_id)
                elif listening[0] == "barge":
                    turn.barge_uids.add(event.utterance_id)
            elif isinstance(event, ResponseDelta):
                rid_uid.setdefault(event.response_id, event.utterance_id)
            elif isinstance(event, ResponseAudioDone):
                audio_done.add(event.response_id)
                if event.cancelled:
                    rec.on_cancel(event.response_id, item.at)
                    for t in turns:
                        if t.response_id == event.response_id:
                            t.cancelled_at = item.at
            elif isinstance(event, MetricsEvent):
                metrics.append(event)

        client.on_audio = on_audio
        client.on_event = on_event
        await client.update(pipeline="assistant", output_audio=True, metrics_interval_ms=1000)
        await _silence_until(client, rec, lambda: False, 1.0)
        for i in range(args.questions):
            audio = load_audio(data / QUESTIONS[i % len(QUESTIONS)])
            turn = Turn(QUESTIONS[i % len(QUESTIONS)], (0, 0))
            current[:] = [turn]
            turns.append(turn)
            listening[0] = "question"
            turn.span = await _send(client, rec, audio)
            barge = args.barge_every and (i + 1) % args.barge_every == 0
            if barge:
                await _silence_until(client, rec, lambda t=turn: t.first_frame_at is not None,
                                     args.answer_timeout_s)
                await _silence_until(client, rec, lambda: False, args.barge_after_s)
                listening[0] = "barge"
                turn.barge = BARGES[i % len(BARGES)]
                clip = _from_onset(load_audio(data / turn.barge), BARGE_S)
                turn.barge_span = await _send(client, rec, clip)

                def barge_answered(t: Turn = turn) -> bool:
                    return any(u in t.barge_uids for u in rid_uid.values())

                # the barge-in's own answer: let it start, then cancel it (response.cancel)
                await _silence_until(client, rec, barge_answered, args.answer_timeout_s)
                await _silence_until(client, rec, lambda: False, 1.0)
                await client.cancel()
                rids = [r for r, u in rid_uid.items() if u in turn.barge_uids]
                await _silence_until(client, rec,
                                     lambda rs=rids: all(r in audio_done for r in rs), 5.0)
                await _silence_until(client, rec, lambda: False, 0.8)
            else:
                def spoken(t: Turn = turn) -> bool:
                    return t.response_id is not None and t.response_id in audio_done

                await _silence_until(client, rec, spoken, args.answer_timeout_s)
                await _silence_until(client, rec, lambda: False, 0.8)
            listening[0] = ""
        return client, rec, turns, (metrics[-1] if metrics else None)


def _arrival(client: Client, kind: type, uid_of: Any, after: Nanos) -> dict[str, Nanos]:
    out: dict[str, Nanos] = {}
    for r in client.received:
        if isinstance(r.event, kind) and r.at >= after and uid_of(r.event) is not None:
            out.setdefault(uid_of(r.event), r.at)
    return out


def offset_local(client: Client, shared: Nanos) -> Nanos:
    """A shared-clock time on the client's clock."""
    return shared - client.latency.offset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--barge-every", type=int, default=1, help="0: never barge in")
    parser.add_argument("--barge-after-s", type=float, default=0.5,
                        help="the user talks again this long after the answer's first audio")
    parser.add_argument("--answer-timeout-s", type=float, default=25.0)
    parser.add_argument("--tts", default="piper")
    parser.add_argument(
        "--lm-batch-threads", type=int, default=None, help="the server's (default: its own)"
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for the server (repeat; e.g. --serve-arg=--turn-threshold=0.95)",
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "voice.wav")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        cmd = [sys.executable, "-m", "streamkit", "serve", "--port", "0", "--port-file",
               str(port_file), "--pipeline", "assistant", "--tts", args.tts]
        if args.lm_batch_threads is not None:
            cmd += ["--lm-batch-threads", str(args.lm_batch_threads)]
        cmd += args.serve_arg
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        try:
            waited = 0
            while not (port_file.exists() and port_file.read_text()):
                if server.poll() is not None or waited > 3000:
                    err = server.stderr.read().decode()[-2000:] if server.stderr else ""
                    print(f"voice: the server did not start: {err}", file=sys.stderr)
                    return 1
                asyncio.run(LoopClock().sleep(100 * NS_PER_MS))
                waited += 1
            url = f"ws://127.0.0.1:{port_file.read_text().strip()}/ws"
            client, rec, turns, metrics = asyncio.run(_session(url, args.data, args))
        finally:
            server.terminate()
            server.wait(30)
    return report(client, rec, turns, metrics, args)


def report(client: Client, rec: Recorder, turns: list[Turn], metrics: MetricsEvent | None,
           args: argparse.Namespace) -> int:
    stereo = rec.stereo()
    sf.write(args.out, stereo, ASR_SAMPLE_RATE, subtype="PCM_16")
    left, right = stereo[:, 0], stereo[:, 1]
    offset = client.latency.offset
    stopped = _arrival(client, SpeechStopped, lambda e: e.utterance_id, 0)
    finals = {r.event.utterance_id: r.at for r in client.received
              if isinstance(r.event, TranscriptFinal) and r.event.is_last}
    deltas = _arrival(client, ResponseDelta, lambda e: e.response_id, 0)
    uid_of = {r.event.response_id: r.event.utterance_id for r in client.received
              if isinstance(r.event, ResponseDelta)}
    rows, v2v_audio, v2v_events, text_first, stops = [], [], [], [], []
    barge_rows: list[list[str]] = []
    barge_steps: list[list[float]] = []
    started = {r.event.utterance_id: (r.event.t, r.at) for r in client.received
               if isinstance(r.event, SpeechStarted)}
    dones = {r.event.response_id: r.event for r in client.received
             if isinstance(r.event, ResponseAudioDone)}
    false_barge = missed = 0
    stage_rows: list[list[float]] = []
    for turn in turns:
        end = _last_voiced(left, *turn.span)
        if end is None or turn.response_id is None or turn.first_frame_at is None:
            rows.append([Path(turn.question).stem, "-", "-", "-", "no answer"])
            continue
        end_t = rec.t0 + samples_to_ns(end, ASR_SAMPLE_RATE)
        first = _first_voiced(right, end, len(right))
        audio_ms = (first - end) * 1000 / ASR_SAMPLE_RATE if first is not None else float("nan")
        event_ms = (turn.first_frame_at - end_t) / NS_PER_MS
        v2v_audio.append(audio_ms)
        v2v_events.append(event_ms)
        uid = uid_of.get(turn.response_id, "")
        token_at = deltas.get(turn.response_id)
        if token_at is not None:
            text_first.append((token_at - end_t) / NS_PER_MS)
        marks = [end_t, stopped.get(uid), finals.get(uid), token_at,
                 (turn.first_frame_pts or 0) - offset, turn.first_frame_at]
        known = [m for m in marks if m is not None]
        if len(known) == len(marks):
            steps = [(b - a) / NS_PER_MS for a, b in itertools.pairwise(known)]
            stage_rows.append(steps)
        note = ""
        done = dones.get(turn.response_id)
        onset_t: Nanos | None = None
        if turn.barge_span is not None:
            onset = _first_voiced(left, *turn.barge_span)
            if onset is not None:
                onset_t = rec.t0 + samples_to_ns(onset, ASR_SAMPLE_RATE)
        if done is not None and done.cancelled and done.reason == "barge-in" and (
                onset_t is None or (turn.cancelled_at or 0) < onset_t):
            false_barge += 1  # cut before the user spoke again (by the question's own tail…)
            note = "false barge-in"
        if turn.barge_span is not None and onset_t is not None:
            onset = (onset_t - rec.t0) * ASR_SAMPLE_RATE // NS_PER_S
            spans = rec.placed.get(turn.response_id, [])
            cut = rec.cut.get(turn.response_id)
            last = max((s + n for s, n in spans), default=0)
            ended = done is not None and not done.cancelled and (
                offset_local(client, done.end) <= onset_t)
            uids = sorted(turn.barge_uids, key=lambda u: started[u][1] if u in started else 0)
            heard = started.get(uids[0]) if uids else None
            heard_ms = (heard[1] - onset_t) / NS_PER_MS if heard is not None else None
            played_out = rec.t0 + samples_to_ns(last, ASR_SAMPLE_RATE)
            if last <= onset or ended:
                note = "barge-in: the answer had ended before the user spoke"
            elif (done is not None and not done.cancelled and heard is not None
                    and heard[1] >= played_out):
                on_ms = (last - onset) * 1000 / ASR_SAMPLE_RATE
                note = (f"barge-in: the answer ended on its own {on_ms:.0f} ms after the onset, "
                        f"before the VAD heard the user ({heard_ms:.0f} ms)")
            elif cut is None or done is None or not done.cancelled:
                missed += 1
                on_ms = (last - onset) * 1000 / ASR_SAMPLE_RATE
                note = f"barge-in missed: the answer played on {on_ms:.0f} ms past the onset"
            elif cut > onset:
                stops.append((min(cut, last) - onset) * 1000 / ASR_SAMPLE_RATE)
                note = f"barge-in: stopped {stops[-1]:.0f} ms after the user's onset"
                if heard is not None and turn.cancelled_at is not None:
                    vad_t, arrived = offset_local(client, heard[0]), heard[1]
                    steps = [(vad_t - onset_t) / NS_PER_MS, (arrived - vad_t) / NS_PER_MS,
                             (turn.cancelled_at - arrived) / NS_PER_MS]
                    barge_steps.append(steps)
                    barge_rows.append([Path(turn.barge).stem[:28], *(f"{x:.0f}" for x in steps),
                                       f"{stops[-1]:.0f}", done.reason])
        rows.append([Path(turn.question).stem, f"{audio_ms:.0f}", f"{event_ms:.0f}",
                     f"{text_first[-1]:.0f}" if token_at else "-", note])
    print_table(
        f"voice to voice ({len(turns)} real questions, piper voice, recording {args.out})",
        ["question", "v2v_audio_ms", "v2v_events_ms", "eos_to_token_ms (baseline)", "note"],
        rows,
    )
    if barge_rows:
        print_table(
            "barge-in: where the time goes (ms; user's onset from the audio energy)",
            ["barge-in speech", "onset→vad_start_pts", "vad_start→speech.started_arrives",
             "→cancel_arrives", "stop_ms (audio)", "reason"],
            [*barge_rows,
             ["p50", *(f"{pctl(list(c), 50):.0f}" for c in zip(*barge_steps, strict=True)),
              f"{pctl(stops, 50):.0f}", ""]],
        )
    n_barge = sum(1 for t in turns if t.barge_span is not None)
    print(f"barge-ins: {n_barge} tried, {len(stops)} stopped the voice, {missed} missed, "
          f"{false_barge} false (the answer cut before the user spoke)")
    names = ["end of turn", "final transcript", "first token", "first audio chunk", "sent"]
    if stage_rows:
        cols = list(zip(*stage_rows, strict=True))
        total = [sum(r) for r in stage_rows]
        print_table(
            "per-stage breakdown (ms, p50 over answers; each stage from the previous mark)",
            ["stage", "p50_ms", "p90_ms"],
            [[n, f"{pctl(list(c), 50):.0f}", f"{pctl(list(c), 90):.0f}"]
             for n, c in zip(names, cols, strict=True)]
            + [["total = v2v (events)", f"{pctl(total, 50):.0f}", f"{pctl(total, 90):.0f}"]],
        )
    snap = metrics.snapshot if metrics is not None else {}
    counters, hists = snap.get("counters", {}), snap.get("histograms", {})
    synth = sum(v for k, v in counters.items() if k.startswith("tts.") and k.endswith(".synth_ns"))
    audio = sum(v for k, v in counters.items() if k.startswith("tts.") and k.endswith(".audio_ns"))
    rtf = synth / audio if audio else float("nan")
    first_audio = next((h.get("p50_ns", float("nan")) / NS_PER_MS for k, h in hists.items()
                        if k.startswith("tts.") and k.endswith(".first_audio")), float("nan"))
    print_table("baseline in the same run: end of speech → first text token vs first audio",
                ["measure", "p50_ms", "p90_ms"],
                [["eos → first text token", f"{pctl(text_first, 50):.0f}",
                  f"{pctl(text_first, 90):.0f}"],
                 ["eos → first audio (audio energy)", f"{pctl(v2v_audio, 50):.0f}",
                  f"{pctl(v2v_audio, 90):.0f}"],
                 ["eos → first audio frame (events)", f"{pctl(v2v_events, 50):.0f}",
                  f"{pctl(v2v_events, 90):.0f}"]])
    def total_of(suffix: str) -> int:
        return int(sum(v for k, v in counters.items() if k.endswith(suffix)))

    print(f"server: speculations used {total_of('.speculations_used')}/"
          f"{total_of('.speculations')}; first pieces prepared before the release "
          f"{total_of('.prepared')}, used {total_of('.prepared_used')}")
    print(f"voice: v2v_p50_ms={pctl(v2v_audio, 50):.0f} v2v_p90_ms={pctl(v2v_audio, 90):.0f} "
          f"bargein_stop_p50_ms={pctl(stops, 50):.0f} tts_rtf={rtf:.3f} "
          f"first_audio_ms={first_audio:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
