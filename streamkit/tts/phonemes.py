"""Phonemes from espeak-ng, run as a separate process (shared by the neural voices).

espeak-ng is GPL-3.0, so streamkit (Apache-2.0) never links it: :class:`EspeakPhonemizer`
keeps one ``espeak-ng -q --ipa`` process per engine and talks to it over pipes. Each request
is one clause on one line followed by a blank line; espeak-ng answers with the clause's IPA
and a blank line, so a warm request costs ~1-3 ms instead of ~30 ms for a process start.

Blocking (pipe I/O): call it inside the engine's :class:`~streamkit.core.compute.ModelSlot` call,
never on the event loop. Not thread-safe: the slot serialises calls.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading

from streamkit.tts.backend import TTSUnavailable

__all__ = ["EspeakPhonemizer", "clauses", "find_espeak"]

_CLAUSE = re.compile(r"([^,.!?;:]+)([,.!?;:]*)")
_LANG_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)?\)")


def find_espeak() -> str:
    """Path of the ``espeak-ng`` program, or :class:`TTSUnavailable` saying what to install."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise TTSUnavailable(
            "espeak-ng is not installed (it phonemizes for the Piper voice and speaks itself): "
            "`apt install espeak-ng` (scripts/system-deps.sh does it)"
        )
    return path


def clauses(text: str) -> list[tuple[str, str]]:
    """``text`` as ``(words, punctuation)`` clauses: ``"Yes, it is."`` →
    ``[("Yes", ","), (" it is", ".")]`` (clauses without words are dropped)."""
    out = []
    for match in _CLAUSE.finditer(text.replace("\n", " ")):
        body, punct = match.group(1), match.group(2)
        if any(c.isalnum() for c in body):
            out.append((body, punct))
    return out


class EspeakPhonemizer:
    """One persistent ``espeak-ng --ipa`` process (see the module docstring).

    Args:
        voice: espeak-ng voice (``en-us``).
        program: path of espeak-ng (default: found on PATH).
    """

    def __init__(self, voice: str = "en-us", program: str | None = None) -> None:
        self.voice = voice
        self.program = program or find_espeak()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [self.program, "-q", "--ipa", "-v", self.voice],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
        return self._proc

    def phonemize(self, clause: str) -> str:
        """IPA of one clause (words separated by spaces; no punctuation). Blocking."""
        text = " ".join(clause.split())
        if not text:
            return ""
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None
            assert proc.stdout is not None
            try:
                proc.stdin.write(text.encode("utf-8") + b"\n\n")
                buf = b""
                while b"\n\n" not in buf:
                    data = os.read(proc.stdout.fileno(), 65536)
                    if not data:
                        raise TTSUnavailable("espeak-ng exited while phonemizing")
                    buf += data
            except (BrokenPipeError, OSError) as error:
                self.close()
                raise TTSUnavailable(f"espeak-ng failed: {error}") from error
        lines = buf.decode("utf-8", "replace").split("\n")
        return _LANG_SWITCH.sub("", " ".join(line.strip() for line in lines if line.strip()))

    def close(self) -> None:
        """End the espeak-ng process (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
