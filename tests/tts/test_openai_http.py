"""The OpenAI-compatible HTTP voice against a real speech server process on loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from streamkit.tts.backend import TTSUnavailable
from streamkit.tts.openai_http import OpenAISpeechConfig, OpenAISpeechEngine, TTSServerError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SERVER = Path(__file__).with_name("_speech_server.py")


@pytest.fixture(scope="module")
def speech_server() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()  # the server prints its port once it listens
    assert line.startswith("PORT "), line
    try:
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(10)


def stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/stats", timeout=5) as response:
        data: dict[str, int] = json.loads(response.read())
    return data


async def test_streams_pcm_chunks_as_the_server_makes_them(speech_server: str) -> None:
    import soxr

    from streamkit.asr.textnorm import wer
    from streamkit.asr.whisper import DecodeOptions, WhisperModelShared

    engine = OpenAISpeechEngine(
        OpenAISpeechConfig(base_url=speech_server + "/v1", voice="joe", sample_rate=22_050)
    )
    text = "Sure, I can help. The train leaves at nine, from platform four."
    chunks = [c async for c in engine.synthesize(text)]
    assert len(chunks) >= 3  # one per clause at least: streamed, not one body
    assert all(c.sample_rate == 22_050 for c in chunks)
    audio = np.concatenate([c.samples for c in chunks])
    heard = WhisperModelShared().decode_window(
        soxr.resample(audio, 22_050, 16_000).astype(np.float32), options=DecodeOptions(beam_size=5)
    ).text
    assert wer([text], [heard]) <= 0.25, heard
    await engine.aclose()


async def test_closing_the_speech_drops_the_connection(speech_server: str) -> None:
    engine = OpenAISpeechEngine(
        OpenAISpeechConfig(base_url=speech_server + "/v1", voice="joe", sample_rate=22_050)
    )
    before = stats(speech_server)
    speech = engine.synthesize("One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten.")
    first = await speech.__anext__()
    assert len(first.samples) > 0
    await speech.aclose()
    await engine.aclose()
    for _ in range(100):  # the server notices the dropped client on its next write
        after = stats(speech_server)
        if after["dropped"] > before["dropped"]:
            break
        await asyncio.sleep(0.1)
    assert after["dropped"] == before["dropped"] + 1
    assert after["finished"] == before["finished"]


async def test_errors_say_what_went_wrong(speech_server: str) -> None:
    engine = OpenAISpeechEngine(OpenAISpeechConfig(base_url=speech_server + "/v1", voice="nope"))
    with pytest.raises(TTSServerError, match=r"HTTP 400.*unsupported voice"):
        [c async for c in engine.synthesize("Hello.")]
    gone = OpenAISpeechEngine(OpenAISpeechConfig(base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(TTSUnavailable, match="cannot reach the speech server"):
        [c async for c in gone.synthesize("Hello.")]
