"""The browser page resumes its session after an abnormal close (real headless Chromium, fake
microphone from a real file, real server on loopback with the echo pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamkit.core.clock import NS_PER_MS
from streamkit.transport import Server, ServerOptions
from streamkit.transport.echo import echo_factory

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


async def test_the_page_resumes_its_session_and_keeps_answering(data_dir: Path) -> None:
    if not HAVE_CHROMIUM:
        pytest.skip("no /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    wav = data_dir / "speech/utterances/pocketsphinx_goforward/goforward.wav"
    server = Server(
        {"echo": echo_factory(tokens=3, token_ns=20 * NS_PER_MS)}, ServerOptions(port=0)
    )
    async with server.running(), playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
            headless=True,
        )
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{server.port}/?pipeline=echo")
            await page.click("#start")
            await page.wait_for_function("window.streamkit.audioFrames > 25", timeout=30_000)
            sid = await page.evaluate("window.streamkit.sessionId")
            assert sid in server.sessions
            first = server.sessions[sid]
            first.ws.transport.abort()  # the worker's connection dies: no close frame (1006)
            await page.wait_for_function("window.streamkit.resumes === 1", timeout=30_000)
            assert await page.evaluate("window.streamkit.sessionId") == sid
            await page.wait_for_function(
                f"window.streamkit.sessionId === {sid!r} && window.streamkit.audioFrames > 60",
                timeout=30_000,
            )
            assert server.sessions[sid] is not first  # a new connection, the same session
            await page.click("#commit")
            await page.wait_for_function("window.streamkit.answered >= 1", timeout=30_000)
            status = await page.text_content("#status")
        finally:
            await browser.close()
    assert status is not None
    assert "closed" not in status
