"""The end-of-turn model protocol: the last seconds of an utterance → P(turn is over).

A :class:`TurnModel` is loaded once per process and shared by every session. ``predict`` is
a blocking CPU call (tens of ms); stages run it on the model's
:class:`~streamkit.core.compute.ModelSlot` (a thread live, inline with charged time on a virtual
loop), never on the event loop directly.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from streamkit.core.clock import Clock
from streamkit.core.compute import ComputeMode, ModelSlot
from streamkit.core.metrics import MetricsRegistry

__all__ = ["TurnModel", "TurnUnavailable"]


class TurnUnavailable(RuntimeError):
    """The model file or its runtime is missing; the message says what to run or install."""


@runtime_checkable
class TurnModel(Protocol):
    """An end-of-turn classifier on audio.

    Attributes:
        name: short name (metrics: ``model.turn.<name>.compute``).
        sample_rate: rate of the audio ``predict`` takes (Hz).
        max_audio_s: it looks at most at the last this many seconds.
    """

    name: str
    sample_rate: int
    max_audio_s: float

    def predict(self, audio: npt.NDArray[np.float32]) -> float:
        """Probability (0–1) that the speaker finished their turn at the end of ``audio``
        (mono float32 in [-1, 1], the utterance so far incl. its trailing silence).
        Blocking; thread-safe."""
        ...

    def slot(
        self, clock: Clock, mode: ComputeMode = "thread", metrics: MetricsRegistry | None = None
    ) -> ModelSlot:
        """The slot bounding calls to this model on the running loop (one per loop)."""
        ...
