"""One line for a user's mistake: what went wrong and what to do (no traceback).

Commands raise :class:`UserError` for a problem they recognise; :func:`describe` turns the
other exceptions a user commonly causes (a missing file, a refused connection, a port in
use, a wrong URL or token, no microphone) into the same kind of line. ``streamkit.cli``
prints it as ``streamkit COMMAND: <line>`` and exits non-zero; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import numpy.typing as npt

__all__ = ["UserError", "describe", "read_audio"]


class UserError(Exception):
    """A problem the user can fix; ``str(error)`` says what and how (one line).

    ``exit_code``: the process's exit status (2: bad input or usage, 1: a runtime failure).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _status_hint(status: int) -> str:
    if status == 401:
        return "missing or wrong token: pass the server's token with --token"
    if status == 403:
        return "the server refused this Origin (serve --origin adds one)"
    if status == 404:
        return "wrong path: the WebSocket endpoint is ws://HOST:PORT/ws"
    if status == 503:
        return "the server is full or draining: try again later"
    return "see the server's log"


def describe(error: BaseException) -> str | None:
    """A one-line message for ``error`` naming the problem and the fix, or None when it is
    not a mistake this module recognises (the caller then prints its type and text)."""
    from streamkit.asr.whisper import ModelNotFound
    from streamkit.lm.backend import BackendUnavailable
    from streamkit.sources.media_io import NoAudioTrack

    if isinstance(error, UserError | NoAudioTrack | ModelNotFound | BackendUnavailable):
        return str(error)  # their messages say what to install or pass
    if isinstance(error, FileNotFoundError):
        return f"no such file: {error.filename or error}"
    if isinstance(error, IsADirectoryError):
        return f"{error.filename or error} is a directory, not a media file"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: is `streamkit serve` running at that address?"
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return "the port is already in use: pass another --port (0 picks a free one)"
    name = type(error).__name__
    try:
        from websockets.exceptions import InvalidStatus, InvalidURI

        if isinstance(error, InvalidStatus):
            status = error.response.status_code
            return f"the server answered HTTP {status}: {_status_hint(status)}"
        if isinstance(error, InvalidURI):
            return f"{error.uri!r} is not a WebSocket URL: use ws://HOST:PORT/ws"
    except ImportError:  # pragma: no cover - websockets is a core dependency
        pass
    if name == "PortAudioError":
        return f"no microphone ({error}); plug one in or pass --file"
    return None


def read_audio(path: str | os.PathLike[str]) -> npt.NDArray[np.float32]:
    """The speech a command was given (16 kHz mono float32), or a :class:`UserError` that
    says what is wrong with the file: missing, not media, video without audio, empty."""
    from streamkit.sources.media_io import NoAudioTrack, has_video, load_audio

    try:
        audio = load_audio(path)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not a media file") from None
    except NoAudioTrack as error:
        if has_video(path):
            raise UserError(f"{path} has no audio track (video only): pass a file with "
                            "speech in it") from error
        raise UserError(f"{path} is not an audio or video file (PyAV cannot read it)"
                        ) from error
    if len(audio) == 0:
        raise UserError(f"{path} holds no audio samples (an empty recording)")
    return audio
