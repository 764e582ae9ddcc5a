"""The media ``streamkit client`` sends: a file's audio (and video), the microphone, the
camera — and the one-line refusals when there is none (no OpenCV or PortAudio noise)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.commands.errors import UserError, read_audio
from streamkit.core.clock import NS_PER_MS, LoopClock, Nanos
from streamkit.core.media import ASR_SAMPLE_RATE
from streamkit.transport.client import Client

__all__ = ["camera_frames", "check_mic", "check_url", "load_file", "mic_audio", "open_camera",
           "video_frames"]


def load_file(path: str, with_video: bool, max_fps: float) -> tuple[Any, list[tuple[int, bytes]]]:
    from streamkit.sources.media_io import has_video, load_video_jpegs

    audio = read_audio(path)
    frames = load_video_jpegs(path, max_fps=max_fps) if with_video and has_video(path) else []
    return audio, frames


def check_url(url: str) -> None:
    if url.startswith(("http://", "https://")):
        raise UserError(f"{url} is the browser page's HTTP address; the client needs the "
                        "WebSocket URL: ws://HOST:PORT/ws")
    if not url.startswith(("ws://", "wss://")):
        raise UserError(f"{url!r} is not a WebSocket URL: use ws://HOST:PORT/ws")


def open_camera() -> Any:
    """The default camera, opened, or a UserError saying there is none (no OpenCV noise)."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    cap = cv2.VideoCapture(0)
    ok = cap.isOpened() and cap.read()[0]
    if not ok:
        cap.release()
        raise UserError("no camera found (camera 0 does not open); drop --camera, or "
                        "stream a video file with --file")
    return cap


async def camera_frames(client: Client, cap: Any) -> None:
    import cv2

    clock = LoopClock()
    try:
        while True:
            ok, frame = await asyncio.to_thread(cap.read)
            taken = clock.now()
            if ok:
                good, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 70])
                if good:
                    await client.send_video(jpeg.tobytes(), taken)
            await clock.sleep(500 * NS_PER_MS)
    finally:
        cap.release()


def check_mic() -> None:
    from streamkit.sources.mic import MicError, _sounddevice

    try:
        sd = _sounddevice()
        sd.query_devices(kind="input")
    except MicError as error:
        raise UserError(str(error)) from None
    except Exception as error:  # PortAudioError: no default input device
        raise UserError(f"no microphone ({error}); plug one in, or stream a file with --file"
                        ) from None


async def mic_audio(client: Client) -> None:
    import sounddevice

    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[npt.NDArray[np.float32]] = asyncio.Queue(maxsize=100)

    def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
        block = np.array(indata[:, 0], dtype=np.float32)

        def put() -> None:
            if chunks.full():
                chunks.get_nowait()  # the sender fell 2 s behind: drop the oldest
            chunks.put_nowait(block)

        loop.call_soon_threadsafe(put)

    with sounddevice.InputStream(
        samplerate=ASR_SAMPLE_RATE, channels=1, dtype="float32", blocksize=320, callback=callback
    ):
        while True:
            await client.send_audio(await chunks.get())


async def video_frames(client: Client, frames: list[tuple[int, bytes]], t0: Nanos,
                 realtime: bool) -> None:
    for t, jpeg in frames:
        if realtime:
            await client.clock.sleep_until(t0 + t)
        await client.send_video(jpeg, t0 + t)
