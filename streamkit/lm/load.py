"""Which language model to load: a frozen :class:`LMSpec` and :func:`load` (config apart
from logic, like :mod:`streamkit.tts.load`)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

from streamkit.core.compute import ComputeMode
from streamkit.lm.backend import BackendUnavailable, LMBackend, TokenCharge

__all__ = ["LMChoice", "LMSpec", "load"]

LMChoice = Literal["auto", "llamacpp", "transformers", "http", "none"]


@dataclass(frozen=True, slots=True)
class LMSpec:
    """The assistant's language model.

    Attributes:
        engine: ``auto`` (llama.cpp when installed, else transformers), a named engine,
            ``http`` (an OpenAI-compatible server at ``url``) or ``none`` (no answers).
        model: a GGUF path (llamacpp/transformers) or the served model name (http);
            ``None`` → the bundled SmolLM2-135M-Instruct.
        url / api_key: the OpenAI-compatible server (``http``).
        threads: CPU threads of a local model's generation, one token at a time (1: the ASR
            shares the cores; measured faster than 2 on a 2-core machine under load).
        batch_threads: CPU threads of a llama.cpp prompt evaluation (a batch of tokens; None:
            ``threads``).
        mode: ``thread`` live, ``virtual`` replay (llama.cpp then charges CPU time).
        charge: in ``virtual`` mode, a fixed cost per token instead of the CPU time
            (bit-identical replays on a loaded machine; llama.cpp).
    """

    engine: LMChoice = "auto"
    model: str | None = None
    url: str | None = None
    api_key: str | None = None
    threads: int = 1
    batch_threads: int | None = 2
    mode: ComputeMode = "thread"
    charge: TokenCharge | None = None


def load(spec: LMSpec) -> LMBackend | None:
    """The backend ``spec`` names (loaded now; blocking, seconds), or None for ``none``.
    Raises :class:`BackendUnavailable` saying what to install or pass."""
    if spec.engine == "none":
        return None
    if spec.engine == "http":
        from streamkit.lm.openai_http import OpenAIHTTPBackend, OpenAIHTTPConfig

        if not spec.url:
            raise BackendUnavailable("lm=http needs lm_url (e.g. http://127.0.0.1:8080/v1)")
        return OpenAIHTTPBackend(
            OpenAIHTTPConfig(base_url=spec.url, model=spec.model or "default", api_key=spec.api_key)
        )
    if spec.engine == "llamacpp" or (
        spec.engine == "auto" and importlib.util.find_spec("llama_cpp") is not None
    ):
        from streamkit.lm.llamacpp import LlamaCppBackend, LlamaCppConfig

        return LlamaCppBackend(
            LlamaCppConfig(
                model_path=spec.model,
                n_threads=spec.threads,
                n_threads_batch=spec.batch_threads,
                mode=spec.mode,
                # replays charge CPU time (steady on a shared machine) or fixed costs
                charge=spec.charge or "cpu",
            )
        )
    from streamkit.lm.transformers_backend import TransformersBackend, TransformersConfig

    return TransformersBackend(
        TransformersConfig(model_path=spec.model, n_threads=spec.threads, mode=spec.mode)
    )
