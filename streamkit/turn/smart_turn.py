"""Smart Turn v3.2 (Pipecat's end-of-turn model, BSD-2-Clause) on onnxruntime.

The model is a Whisper-tiny-sized audio encoder with a classifier head: 80-bin Whisper
log-mel features of the last 8 s of the utterance in, a sigmoid probability that the turn is
complete out. Its input must be prepared exactly as in training (checked against the
reference implementation's features and probabilities on real clips in
``tests/turn/test_smart_turn.py``):

1. 16 kHz mono float32; keep the **last** 8 s, or zero-pad **at the start** to 8 s
   (128 000 samples) — the end of the audio is always at the end of the window;
2. normalise the whole padded window to zero mean, unit variance (``do_normalize``);
3. Whisper log-mel: centred STFT (reflect padding), 400-sample periodic Hann window, hop 160,
   power spectrum, 80 Slaney mel filters (0–8 kHz, Slaney area norm), ``log10`` floored at
   1e-10, the last frame dropped (800 frames), clamped to 8 below the maximum, ``(x + 4) / 4``.

The weights are not on a model hub here: ``scripts/fetch_smart_turn.py`` (run by ``make``)
reads the file out of the ``pipecat-ai`` wheel on PyPI and stores it in ``models/``.
:func:`smart_turn_path` finds it (or says how to get it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from streamkit.core.blas import single_threaded_blas
from streamkit.core.clock import Clock
from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.core.metrics import MetricsRegistry
from streamkit.turn.backend import TurnUnavailable

__all__ = [
    "MODEL_FILENAME",
    "SmartTurnConfig",
    "SmartTurnModel",
    "log_mel_features",
    "model_input",
    "smart_turn_path",
]

MODEL_FILENAME = "smart-turn-v3.2-cpu.onnx"
RATE = 16_000
WINDOW_S = 8
N_SAMPLES = RATE * WINDOW_S
N_FFT = 400
HOP = 160
N_MELS = 80
ENV_VAR = "STREAMKIT_SMART_TURN_MODEL"


def smart_turn_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The Smart Turn ONNX file: ``path``, else ``$STREAMKIT_SMART_TURN_MODEL``, else
    ``models/smart-turn-v3.2-cpu.onnx`` in the source tree. Raises :class:`TurnUnavailable`
    saying how to fetch it."""
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    elif os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    else:
        candidates.append(Path(__file__).resolve().parents[2] / "models" / MODEL_FILENAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TurnUnavailable(
        f"the Smart Turn model is missing ({candidates[0]}): run `make setup` or "
        "`python scripts/fetch_smart_turn.py` (reads it from the pipecat-ai wheel on PyPI), "
        f"set {ENV_VAR}, or use turn_detection=vad"
    )


def model_input(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The last 8 s of ``audio``, zero-padded at the start to exactly 128 000 samples."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if len(x) >= N_SAMPLES:
        return np.ascontiguousarray(x[len(x) - N_SAMPLES :])
    return np.concatenate([np.zeros(N_SAMPLES - len(x), dtype=np.float32), x])


def _slaney_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Hz → Slaney mels: linear (3 per 200 Hz) below 1 kHz, logarithmic above."""
    linear = 3.0 * hz / 200.0
    log = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(hz >= 1000.0, log, linear)


def _slaney_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = 200.0 * mel / 3.0
    log = 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0)
    return np.where(mel >= 15.0, log, linear)


@cache
@cache
def _mel_filters() -> npt.NDArray[np.float64]:
    """(80, 201) triangular Slaney filters with area normalisation, 0–8 kHz."""
    edges = _slaney_hz(np.linspace(0.0, float(_slaney_mel(np.array(RATE / 2.0))), N_MELS + 2))
    bins = np.linspace(0.0, RATE / 2.0, N_FFT // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (upper - lower))


@cache
def _hann() -> npt.NDArray[np.float64]:
    n = np.arange(N_FFT, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)  # periodic


def log_mel_features(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Smart Turn's input features (80, 800) for ``audio`` (any length; see the module
    docstring: last 8 s, zero-padded at the start, normalised, Whisper log-mel)."""
    x = model_input(audio)
    x = (x - x.mean()) / np.sqrt(x.var() + np.float32(1e-7))
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _hann(), axis=-1)) ** 2  # (801, 201)
    mel = np.maximum(_mel_filters() @ power.T, 1e-10)  # (80, 801)
    log = np.log10(mel)[:, :-1]
    log = np.maximum(log, log.max() - 8.0)
    features: npt.NDArray[np.float32] = ((log + 4.0) / 4.0).astype(np.float32)
    return features


@dataclass(frozen=True, slots=True)
class SmartTurnConfig:
    """Options of the Smart Turn engine.

    Attributes:
        model_path: the ONNX file (None: :func:`smart_turn_path`).
        threads: onnxruntime intra-op threads (1: the ASR and the LM share the cores).
    """

    model_path: str | None = None
    threads: int = 1


class SmartTurnModel:
    """Smart Turn v3.2 on onnxruntime (see the module docstring). Load once per process;
    ``predict`` is thread-safe (onnxruntime sessions are)."""

    name = "smart_turn"
    sample_rate = RATE
    max_audio_s = float(WINDOW_S)

    def __init__(self, config: SmartTurnConfig | None = None) -> None:
        self.config = cfg = config or SmartTurnConfig()
        self.path = smart_turn_path(cfg.model_path)
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise TurnUnavailable(
                "onnxruntime is missing: `pip install onnxruntime` (or turn_detection=vad)"
            ) from error
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = max(1, cfg.threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session: Any = ort.InferenceSession(
            str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._slots: dict[int, ModelSlot] = {}

    def predict(self, audio: npt.NDArray[np.float32]) -> float:
        """P(turn complete) for the end of ``audio`` (16 kHz mono; blocking, ~tens of ms)."""
        with single_threaded_blas():  # the log-mel product would leave BLAS threads spinning
            features = log_mel_features(audio)[None]
        (out,) = self._session.run(None, {"input_features": features})
        return float(np.asarray(out).reshape(-1)[0])

    def slot(
        self, clock: Clock, mode: ComputeMode = "thread", metrics: MetricsRegistry | None = None
    ) -> ModelSlot:
        """One slot per event loop: the sessions on a loop take turns on the model."""
        import asyncio

        key = id(asyncio.get_running_loop())
        slot = self._slots.get(key)
        if slot is None or slot.mode != mode:
            slot = self._slots[key] = ModelSlot(f"turn.{self.name}", clock, mode, metrics)
        return slot
