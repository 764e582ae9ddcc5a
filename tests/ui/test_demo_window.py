"""The demo's OpenCV window under a real X server (Xvfb): the screen shows what was rendered."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from streamkit.record.mcap import default_session_path, read_session
from streamkit.ui.render import LAYOUT, video_rect

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("import") is None,
    reason="needs Xvfb and ImageMagick's import (apt install xvfb imagemagick)",
)


def _wait(seconds: float) -> None:
    threading.Event().wait(seconds)


def _interruptible() -> None:
    """In the demo's process, before it starts: Ctrl-C as in a terminal. A runner that
    ignores SIGINT (a script's background job) passes that on, and the demo rightly keeps
    ignoring it: it lingered its 60 s, and the test read no latency summary."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def xvfb() -> Iterator[str]:
    number = 40 + os.getpid() % 400
    while Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
        number += 1
    display = f":{number}"
    proc = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    socket = Path(f"/tmp/.X11-unix/X{display[1:]}")
    for _ in range(100):
        if socket.exists():
            break
        _wait(0.05)
    assert socket.exists(), "Xvfb did not start"
    try:
        yield display
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def _match(screen: np.ndarray, rendered: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Where the rendered frame (less its top 40 rows) best matches the screen: the normalised
    squared difference there and the frame's top-left corner on the screen."""
    scores = cv2.matchTemplate(screen, rendered[40:700, 0:1280], cv2.TM_SQDIFF_NORMED)
    _, _, (dx, dy), _ = cv2.minMaxLoc(scores)
    return float(scores[dy, dx]), (dx, dy - 40)


def _region(img: np.ndarray, name: str, dx: int, dy: int) -> np.ndarray:
    x, y, w, h = LAYOUT[name]
    return img[y + dy : y + dy + h, x + dx : x + dx + w].astype(np.int16)


def test_window_shows_the_rendered_frame(xvfb: str, tmp_path: Path) -> None:
    snap = tmp_path / "rendered.png"
    shot = tmp_path / "screen.png"
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "streamkit", "demo", "--pipeline", "vad", "--speed", "4",
         "--window", "yes", "--snapshot", str(snap), "--linger", "60",
         "--record-dir", str(tmp_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_interruptible,
    )
    try:
        for _ in range(600):  # the session is ~15 s; at ×4 about 4 s
            if snap.exists() or demo.poll() is not None:
                break
            _wait(0.1)
        assert snap.exists(), "demo never rendered its final frame"
        rendered = cv2.imread(str(snap))
        assert rendered is not None
        for _ in range(20):  # let the window map and repaint the final frame (≤ ~30 s)
            _wait(1.5)
            subprocess.run(["import", "-display", xvfb, "-window", "root", str(shot)],
                           check=True, timeout=30)
            screen = cv2.imread(str(shot))
            if screen is not None and _match(screen, rendered)[0] < 0.02:
                break
        assert demo.poll() is None, "the window closed before the screenshot"
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            out, _ = demo.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
            out, _ = demo.communicate()
    screen = cv2.imread(str(shot))
    assert screen is not None
    assert rendered.shape == (720, 1280, 3)

    # where is the window? The image starts at the window's top: no Qt toolbar above it
    score, (dx, dy) = _match(screen, rendered)
    assert score < 0.02
    assert dy <= 2, f"something ({dy} px) sits above the image: a toolbar?"

    for name in ("header", "video", "conversation", "hud"):
        drawn, shown = _region(rendered, name, 0, 0), _region(screen, name, dx, dy)
        assert np.mean(np.abs(drawn - shown)) < 3.0, name
        assert shown.std() > 2, f"{name} region is blank on screen"

    # the video region holds the session's last camera frame, scaled into place
    last = read_session(default_session_path()).packets("/video")[-1].payload.image
    vx, vy, vw, vh = video_rect(last.shape)
    on_screen = screen[vy + dy : vy + dy + vh, vx + dx : vx + dx + vw].astype(np.int16)
    expected = cv2.resize(last, (vw, vh), interpolation=cv2.INTER_AREA).astype(np.int16)
    assert np.mean(np.abs(on_screen - expected)) < 4.0

    # text regions carry text: bright anti-aliased strokes on the dark panels
    for name in ("header", "conversation", "hud"):
        bright = (_region(screen, name, dx, dy).max(axis=2) > 120).sum()
        assert bright > 400, f"no text drawn in {name}"
    assert "latency summary" in out


def test_a_replay_without_a_terminal_exits_at_its_end(xvfb: str, tmp_path: Path) -> None:
    """stdin is not a tty (a script, CI): the window closes when the replay ends."""
    env = {**os.environ, "DISPLAY": xvfb}
    done = subprocess.run(
        [sys.executable, "-m", "streamkit", "demo", "--pipeline", "echo", "--window", "yes",
         "--record-dir", str(tmp_path)],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "latency summary" in done.stdout


def _red_pixels(screen: npt.NDArray[np.uint8]) -> int:
    """How many pixels of the header's right part are the red of MUTED / REC."""
    header = screen[:120, 800:1280].astype(np.int16)
    red = (header[:, :, 2] > 180) & (header[:, :, 1] < 110) & (header[:, :, 0] < 110)
    return int(red.sum())


def _press(display: str, key: str) -> None:
    """Press and release ``key`` on ``display`` through the XTEST extension (libXtst)."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    xtst = ctypes.CDLL(ctypes.util.find_library("Xtst") or "libXtst.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XStringToKeysym.restype = ctypes.c_ulong
    x11.XStringToKeysym.argtypes = [ctypes.c_char_p]
    x11.XKeysymToKeycode.restype = ctypes.c_ubyte
    x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                                       ctypes.c_ulong]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(display.encode())
    assert handle, f"cannot open display {display}"
    try:
        code = x11.XKeysymToKeycode(handle, x11.XStringToKeysym(key.encode()))
        xtst.XTestFakeKeyEvent(handle, code, 1, 0)
        xtst.XTestFakeKeyEvent(handle, code, 0, 0)
        x11.XFlush(handle)
    finally:
        x11.XCloseDisplay(handle)


@pytest.mark.skipif(ctypes.util.find_library("Xtst") is None, reason="needs libXtst (XTEST)")
def test_keys_record_mute_and_quit(xvfb: str, tmp_path: Path) -> None:
    shot = tmp_path / "screen.png"
    env = {**os.environ, "DISPLAY": xvfb}
    demo = subprocess.Popen(
        [sys.executable, "-m", "streamkit", "demo", "--pipeline", "vad", "--window", "yes",
         "--record-dir", str(tmp_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for _ in range(60):  # wait for the window (the session itself lasts ~15 s)
            subprocess.run(["import", "-display", xvfb, "-window", "root", str(shot)],
                           check=True, timeout=30)
            image = cv2.imread(str(shot))
            if image is not None and (image[:120, :400].max(axis=2) > 200).sum() > 500:
                break
            assert demo.poll() is None, demo.communicate()[0]
            _wait(0.5)
        _wait(1.0)
        _press(xvfb, "r")
        _wait(1.0)
        _press(xvfb, "m")
        for _ in range(20):  # a loaded machine repaints late: retake until the header is drawn
            _wait(0.5)
            subprocess.run(["import", "-display", xvfb, "-window", "root", str(shot)],
                           check=True, timeout=30)
            grabbed = cv2.imread(str(shot))
            if grabbed is not None and _red_pixels(grabbed) > 150:
                break
        _press(xvfb, "r")
        _wait(0.5)
        _press(xvfb, "q")
        out, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, out
    screen = cv2.imread(str(shot))
    assert screen is not None
    assert _red_pixels(screen) > 150  # MUTED and REC, drawn in red
    recording = tmp_path / "streamkit-demo-1.mcap"
    assert f"recorded → {recording}" in out.replace("\n", "")
    session = read_session(recording)
    chunks = [p.payload.samples for p in session.packets("/audio")]
    assert len(chunks) > 60  # ~2.5 s of 20 ms chunks
    silent = [not c.any() for c in chunks]
    assert any(silent)  # muted: exact digital silence …
    assert not all(silent)  # … only after the m key
    assert session.packets("/video")
    assert session.final_metrics() is not None
