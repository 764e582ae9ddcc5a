"""Language models: backend protocol, local and HTTP backends, fusion context, turn handling.

Light imports only: the runtime-specific backends (:mod:`streamkit.lm.llamacpp`,
:mod:`streamkit.lm.transformers_backend`, :mod:`streamkit.lm.openai_http`) import their
runtime when constructed, so this package imports without llama-cpp, torch or httpx.
"""

from streamkit.lm.backend import (
    BackendUnavailable,
    Completion,
    LMBackend,
    LMRequest,
    Message,
    Usage,
    approx_token_count,
)
from streamkit.lm.fusion import FusedContext, FusionBuilder, FusionConfig, Turn
from streamkit.lm.responder import Responder, ResponderConfig
from streamkit.lm.scripted import ScriptedBackend

__all__ = [
    "BackendUnavailable",
    "Completion",
    "FusedContext",
    "FusionBuilder",
    "FusionConfig",
    "LMBackend",
    "LMRequest",
    "Message",
    "Responder",
    "ResponderConfig",
    "ScriptedBackend",
    "Turn",
    "Usage",
    "approx_token_count",
]
