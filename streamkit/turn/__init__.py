"""Turn-taking: when has the user finished speaking?

- :mod:`streamkit.turn.backend`: the :class:`TurnModel` protocol (audio → end-of-turn
  probability) and :class:`TurnUnavailable`.
- :mod:`streamkit.turn.smart_turn`: Pipecat's Smart Turn v3.2 (ONNX) on onnxruntime, with its
  Whisper log-mel features (runtime imported lazily).
- :mod:`streamkit.turn.core`: :class:`TurnCore`, the pure decision policy (``vad`` or
  ``smart``): VAD state, audio time and model results in; ``Predict`` / ``Speculate`` /
  ``Resume`` / ``EndTurn`` actions out.

Light imports only: importing this package loads no runtime.
"""

from streamkit.turn.backend import TurnModel, TurnUnavailable
from streamkit.turn.core import (
    EndTurn,
    Predict,
    Resume,
    Speculate,
    TurnAction,
    TurnConfig,
    TurnCore,
    TurnDetection,
)

__all__ = [
    "EndTurn",
    "Predict",
    "Resume",
    "Speculate",
    "TurnAction",
    "TurnConfig",
    "TurnCore",
    "TurnDetection",
    "TurnModel",
    "TurnUnavailable",
]
