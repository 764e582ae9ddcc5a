"""Spoken answers through a real server on loopback: the real models (Whisper tiny.en,
SmolLM2 by llama.cpp, the Piper voice), the Python client and the ``streamkit client`` CLI.

Our own Whisper listens to the audio the client received and must hear the answer's text.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr

from streamkit.asr.textnorm import wer
from streamkit.core.events import ResponseAudioDone, ResponseDone
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.transport import Server, ServerOptions, SessionConfig
from streamkit.transport.client import Client
from streamkit.transport.protocol import OutputAudio
from streamkit.transport.speaker import attach, finish

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def assistant() -> Any:
    from streamkit.pipelines import assistant
    from streamkit.tts import TTSSpec

    config = assistant.AssistantConfig(tts=TTSSpec("piper"), vision=False)
    models = assistant.Models.load(config)
    assert models.tts is not None
    return assistant, config, models


@pytest.fixture
async def server(assistant: Any) -> AsyncIterator[Server]:
    module, config, models = assistant

    def factory(source: Stage, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        return module.build(config, models, source, sink, metrics=metrics)  # type: ignore[no-any-return]

    srv = Server({"assistant": factory}, ServerOptions(port=0, config=SessionConfig()))
    async with srv.running():
        yield srv


def hear(audio: np.ndarray, rate: int) -> str:
    from streamkit.asr.whisper import DecodeOptions, WhisperModelShared

    whisper = WhisperModelShared()
    audio16 = soxr.resample(audio, rate, 16_000).astype(np.float32)
    return str(whisper.decode_window(audio16, options=DecodeOptions(beam_size=5)).text)


async def ask(client: Client, data_dir: Path) -> None:
    from streamkit.sources.media_io import load_audio

    audio = load_audio(data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav")
    await client.stream_audio(audio)
    await client.stream_audio(np.zeros(16000, np.float32))
    await client.commit()
    await client.wait_for(lambda r: isinstance(r.event, ResponseDone), 60)


async def test_the_client_receives_and_hears_the_spoken_answer(
    server: Server, data_dir: Path
) -> None:
    frames: list[OutputAudio] = []
    async with Client.connect(server.url) as client:
        await client.update(pipeline="assistant", output_audio=True)
        speaker = attach(client, play=False)
        inner = client.on_audio
        assert inner is not None

        def keep(frame: OutputAudio, at: int) -> None:
            frames.append(frame)
            inner(frame, at)

        client.on_audio = keep
        await ask(client, data_dir)
        await finish(client, speaker, 60)
        [answer] = client.of_type(ResponseDone)
        [done] = client.of_type(ResponseAudioDone)
    assert frames
    assert not done.cancelled
    assert {f.response_id for f in frames} == {answer.response_id}
    assert [f.header.seq for f in frames] == list(range(len(frames)))
    assert all(f.header.sample_rate == 22_050 for f in frames)
    # pts on the server's shared clock, back to back (or with a gap when the voice lagged)
    for a, b in itertools.pairwise(frames):
        assert b.header.capture_ns >= a.header.capture_ns + len(a.samples) * 10**9 // 22_050 - 1
    assert "".join(f.text for f in frames).strip() == done.text.strip()
    heard = hear(speaker.timeline(), 22_050)
    assert wer([done.text], [heard]) <= 0.35, (done.text, heard)

    async with Client.connect(server.url) as quiet:  # speech off (the default): text only
        await quiet.update(pipeline="assistant")
        await ask(quiet, data_dir)
        await asyncio.sleep(1.0)
        assert quiet.audio_frames == 0
        assert not quiet.of_type(ResponseAudioDone)


async def test_streamkit_client_saves_the_answer_audio(
    server: Server, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answer.wav"
    wav = data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamkit", "client", "--file", str(wav), "--url", server.url,
        "--no-realtime", "--save-audio", str(out), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 180)
    errors = [line for line in stdout.decode().splitlines() if '"type":"error"' in line]
    assert proc.returncode == 0, (stderr.decode()[-2000:], errors, stdout.decode()[-1000:])
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 22_050
    assert len(audio) > rate  # more than a second of answer
    heard = hear(audio, rate)
    answers = [line for line in stdout.decode().splitlines() if '"response.done"' in line]
    assert heard.strip(), stdout.decode()[-2000:]
    assert answers, stdout.decode()[-2000:]


CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()


@pytest.mark.browser
async def test_the_browser_page_plays_the_spoken_answer(
    server: Server, data_dir: Path, tmp_path: Path
) -> None:
    """Real headless Chromium, its fake mic playing a real question then silence: the page
    plays the answer through its AudioWorklet; the samples it rendered are captured in the
    page and our Whisper must hear the answer's text in them."""
    if not HAVE_CHROMIUM:
        pytest.skip("no /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    from streamkit.sources.media_io import load_audio
    from tests.transport.test_e2e_real import CHROMIUM_FAKE_MEDIA

    question = load_audio(data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav")
    wav = tmp_path / "question.wav"  # the fake mic loops its file: silence after the question
    sf.write(wav, np.concatenate([question, np.zeros(16_000 * 30, np.float32)]), 16_000)
    args = [*CHROMIUM_FAKE_MEDIA, f"--use-file-for-fake-audio-capture={wav}",
            "--autoplay-policy=no-user-gesture-required"]
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = await browser.new_page()
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            await page.goto(f"http://127.0.0.1:{server.port}/?pipeline=assistant")
            await page.evaluate("window.streamkitSpeech.capture()")
            await page.click("#start")
            try:
                await page.wait_for_function(
                    "window.streamkit.events.includes('response.audio.done')", timeout=90_000
                )
            except playwright_api.TimeoutError:  # say what the page and the server saw
                seen = await page.evaluate(
                    "({events: window.streamkit.events.filter(e => e !== 'metrics'),"
                    " errors: window.streamkit.errors, frames: window.streamkit.audioFrames,"
                    " answers: window.streamkit.answers})"
                )
                metrics = [
                    {k: v for k, v in s.metrics.snapshot().items() if k in ("counters", "edges")}
                    for s in server.sessions.values()
                ]
                pytest.fail(f"no response.audio.done in 90 s: page {seen}; console "
                            f"{console[-10:]}; server sessions {metrics}")
            await page.wait_for_timeout(1500)  # the last ~200 ms still play after the done
            state = await page.evaluate(
                """() => {
                  const s = window.streamkitSpeech;
                  const n = s.captured.reduce((a, b) => a + b.length, 0);
                  const all = new Float32Array(n); let o = 0;
                  for (const b of s.captured) { all.set(b, o); o += b.length; }
                  const pcm = Int16Array.from(
                    all, (x) => Math.max(-32768, Math.min(32767, x * 32768)));
                  let bin = ""; const bytes = new Uint8Array(pcm.buffer);
                  for (let i = 0; i < bytes.length; i += 8192)
                    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
                  return { pcm: btoa(bin), rate: s.rate(), frames: s.frames,
                           answers: Object.values(window.streamkit.answers),
                           errors: window.streamkit.errors, texts: s.texts.join("") };
                }"""
            )
        finally:
            await browser.close()
    import base64

    played = np.frombuffer(base64.b64decode(state["pcm"]), dtype="<i2").astype(np.float32) / 32768
    assert state["errors"] == [], console
    assert state["frames"] > 10
    assert state["rate"] == 22_050
    voiced = played[np.abs(played) > 0.01]
    assert len(voiced) > 22_050 // 2, "the page rendered no speech"
    [answer] = state["answers"]
    heard = hear(played, state["rate"])
    assert wer([answer], [heard]) <= 0.4, (answer, heard, console[-5:])
