"""espeak-ng and flite, the formant/diphone voices of Debian, each run as a separate process.

espeak-ng is GPL-3.0 and flite BSD-like; streamkit (Apache-2.0) only starts their programs
(``espeak-ng --stdout``, ``flite -o FILE``) and reads the WAV they write, so neither is linked.
One process per piece: ~30 ms to start here, then faster than real time by far (~0.01 RTF),
robotic but very cheap. The program runs inside the engine's
:class:`~streamkit.core.compute.ModelSlot` call (blocking I/O in the worker thread).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import soundfile as sf

from streamkit.core.clock import Clock, LoopClock
from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.core.media import AudioChunk
from streamkit.core.metrics import MetricsRegistry
from streamkit.tts.backend import Speech, TTSUnavailable
from streamkit.tts.models import audio_charge, charged_call

__all__ = ["ProcessVoice", "ProcessVoiceConfig"]

Program = Literal["espeak-ng", "flite"]
_RATES = {"espeak-ng": 22_050, "flite": 16_000}


@dataclass(frozen=True, slots=True)
class ProcessVoiceConfig:
    """Options: which ``program``, its ``voice`` (espeak-ng ``en-us``; flite ``slt`` 16 kHz,
    ``kal`` 8 kHz), words per minute (espeak-ng), compute mode; ``charge_ns_per_audio_s``: in
    ``virtual`` mode, a fixed cost per second of speech instead of the CPU time."""

    program: Program = "espeak-ng"
    voice: str | None = None
    words_per_minute: int = 175
    mode: ComputeMode = "thread"
    charge_ns_per_audio_s: int | None = None


class ProcessVoice:
    """espeak-ng or flite as a separate process (see the module docstring)."""

    def __init__(
        self,
        config: ProcessVoiceConfig | None = None,
        *,
        clock: Clock | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.config = cfg = config or ProcessVoiceConfig()
        path = shutil.which(cfg.program)
        if path is None:
            raise TTSUnavailable(f"{cfg.program} is not installed: `apt install {cfg.program}`")
        self.program = path
        self.name: str = cfg.program
        self.voice = cfg.voice or ("en-us" if cfg.program == "espeak-ng" else "slt")
        self.sample_rate: int = _RATES[cfg.program] if self.voice != "kal" else 8_000
        self.slot = ModelSlot(f"tts.{self.name}", clock or LoopClock(), cfg.mode, metrics)

    def _run(self, text: str) -> npt.NDArray[np.float32]:
        text = " ".join(text.split())
        if not text:
            return np.zeros(0, np.float32)
        if self.config.program == "espeak-ng":
            cmd = [
                self.program,
                "--stdout",
                "-v",
                self.voice,
                "-s",
                str(self.config.words_per_minute),
                "--",
                text,
            ]
            wav = subprocess.run(cmd, capture_output=True, check=True, timeout=30).stdout
        else:
            fd, name = tempfile.mkstemp(suffix=".wav")
            os.close(fd)
            try:
                subprocess.run(
                    [self.program, "-voice", self.voice, "-t", text, "-o", name],
                    capture_output=True,
                    check=True,
                    timeout=30,
                )
                with open(name, "rb") as f:
                    wav = f.read()
            finally:
                os.unlink(name)
        data, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=False)
        if rate != self.sample_rate:
            self.sample_rate = int(rate)
        return np.asarray(data, dtype=np.float32).reshape(-1)

    async def warmup(self) -> None:
        async for _ in self.synthesize("Hello."):
            pass

    def synthesize(self, text: str) -> Speech:
        return Speech(self._speak(text))

    async def _speak(self, text: str) -> AsyncIterator[AudioChunk]:
        fixed = audio_charge(self.config.charge_ns_per_audio_s, lambda: self.sample_rate)
        samples = await charged_call(self.slot, lambda: self._run(text), self.config.mode, 1, fixed)
        if len(samples):
            yield AudioChunk(samples, self.sample_rate)
