"""The browser page (``/``) in real headless Chromium: instructions, the conversation view with
each turn's latency, the headline, the details panel and the favicon; checked in the DOM and
in a screenshot (issue 12).

Fake media from real files: Chromium's fake microphone plays jfk.wav. The server runs the
real ASR (``captions``) and the model-free ``echo`` pipeline, whose answer to "Answer now"
pairs a turn with an answer without loading a language model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from streamkit.transport import Server, ServerOptions, SessionConfig
from streamkit.transport.echo import echo_factory
from tests.transport.test_e2e_real import CHROMIUM, CHROMIUM_FAKE_MEDIA, HAVE_CHROMIUM
from tests.transport.test_turns_real import captions_factory  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture
async def server(captions_factory: Any) -> AsyncIterator[Server]:  # noqa: F811
    options = ServerOptions(port=0, config=SessionConfig(pipeline="captions"))
    srv = Server({"captions": captions_factory, "echo": echo_factory()}, options)
    async with srv.running():
        yield srv


async def _page(server: Server, data_dir: Path, query: str, tmp_path: Path) -> dict[str, Any]:
    if not HAVE_CHROMIUM:
        pytest.skip("no /usr/bin/chromium")
    playwright_api = pytest.importorskip("playwright.async_api")
    wav = data_dir / "speech/utterances/jfk/jfk.wav"
    args = [*CHROMIUM_FAKE_MEDIA, f"--use-file-for-fake-audio-capture={wav}"]
    out: dict[str, Any] = {}
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            await page.goto(f"http://127.0.0.1:{server.port}/?{query}")
            out["intro_before"] = await page.is_visible("#intro")
            out["icon"] = await page.get_attribute("link[rel=icon]", "href")
            await page.click("#start")
            if "echo" in query:
                await page.wait_for_function("window.streamkit.audioFrames > 100")
                await page.click("#commit")
                await page.wait_for_selector(".turn .assistant:not([hidden])", timeout=60_000)
            else:
                await page.wait_for_function(
                    "[...document.querySelectorAll('.turn .heard')]"
                    ".some((e) => e.textContent.toLowerCase().includes('country'))",
                    timeout=90_000,
                )
            await page.wait_for_function("document.querySelector('#stages table') !== null",
                                         timeout=20_000)
            out["intro_after"] = await page.is_visible("#intro")
            out["turns"] = await page.eval_on_selector_all(
                ".turn", "els => els.map((e) => ({heard: e.querySelector('.heard').textContent,"
                " answer: e.querySelector('.answer').textContent,"
                " latency: e.querySelector('.latency').textContent}))")
            out["headline"] = await page.text_content("#headline")
            await page.click("#details summary")
            out["stages"] = await page.text_content("#stages")
            shot = tmp_path / "page.png"
            await page.screenshot(path=str(shot), full_page=True)
            box = await page.eval_on_selector("#turns", "e => e.getBoundingClientRect().toJSON()")
            out["shot"], out["box"] = shot, box
            out["errors"] = await page.evaluate("window.streamkit.errors")
        finally:
            await browser.close()
    return out


def _text_pixels(shot: Path, box: dict[str, float]) -> int:
    """Dark (text) pixels inside ``box`` of the screenshot."""
    image = cv2.imread(str(shot))
    assert image is not None
    x, y, w, h = (round(box[k]) for k in ("x", "y", "width", "height"))
    region = image[y : y + h, x : x + w]
    return int((region.max(axis=2) < 110).sum())


async def test_the_page_shows_each_turn_with_its_latency(
    server: Server, data_dir: Path, tmp_path: Path
) -> None:
    out = await _page(server, data_dir, "pipeline=captions", tmp_path)
    assert out["intro_before"]  # the instructions greet a first visit …
    assert not out["intro_after"]  # … and make room once the session is up
    heard = " ".join(t["heard"] for t in out["turns"]).lower()
    assert "fellow americans" in heard
    assert "country" in heard
    first = out["turns"][0]
    assert first["latency"].startswith("end of speech → final transcript ")
    assert "→ final transcript: p50 " in out["headline"]
    assert "capture →" in out["stages"]  # the per-stage panel, in words
    assert out["errors"] == []
    assert _text_pixels(out["shot"], out["box"]) > 800  # the turn list is drawn
    async with httpx.AsyncClient() as http:
        icon = await http.get(f"http://127.0.0.1:{server.port}/{out['icon']}")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


async def test_an_answer_joins_its_turn_with_the_first_token_latency(
    server: Server, data_dir: Path, tmp_path: Path
) -> None:
    out = await _page(server, data_dir, "pipeline=echo&speech=0", tmp_path)
    turn = out["turns"][0]
    assert turn["heard"].startswith("heard ")  # the echo pipeline's "transcript"
    assert turn["answer"].startswith("t0 t1")
    assert "→ first answer token " in turn["latency"]
    assert "→ first answer token: p50 " in out["headline"]
    image = cv2.imread(str(out["shot"]))
    assert image is not None
    assert np.asarray(image).std() > 10
