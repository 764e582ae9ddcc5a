"""A second local backend: a GGUF (or Hugging Face) model on torch via ``transformers``.

Slower than :mod:`streamkit.lm.llamacpp` on CPU (GGUF weights are dequantised to float32),
kept as the fallback where llama-cpp-python cannot be built. Needs ``torch``,
``transformers`` and ``gguf``. Same prompt-cache behaviour: the KV cache of the last sequence
is kept and cropped to the longest common prefix, so a prefilled prompt leaves only its tail.
One slot call per generated token (cancellable within one token); answers serialised.
``torch.set_num_threads(n_threads)`` is applied at load (a process-wide torch setting).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamkit.core.clock import Clock, LoopClock
from streamkit.core.compute import ComputeMode, LoopLock, ModelSlot
from streamkit.core.metrics import MetricsRegistry
from streamkit.lm.backend import (
    BackendUnavailable,
    Completion,
    LMRequest,
    Message,
    StopFilter,
    Usage,
    common_prefix,
)
from streamkit.lm.models import model_path

__all__ = ["TransformersBackend", "TransformersConfig"]


@dataclass(frozen=True, slots=True)
class TransformersConfig:
    """Options: ``model_path`` is a GGUF file or a Hugging Face model directory (``None`` =
    the bundled SmolLM2-135M-Instruct GGUF); ``n_threads`` torch CPU threads."""

    model_path: str | Path | None = None
    n_threads: int = 2
    repetition_penalty: float = 1.1
    mode: ComputeMode = "thread"
    name: str = "transformers"


class TransformersBackend:
    """A causal LM on torch (see the module docstring). Load once per process; share."""

    def __init__(
        self,
        config: TransformersConfig | None = None,
        *,
        clock: Clock | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.config = cfg = config or TransformersConfig()
        self.name = cfg.name
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache
        except ImportError as error:
            raise BackendUnavailable(
                "the transformers backend needs `pip install torch transformers gguf` "
                "(install torch from the CPU index first), or use the llama.cpp backend"
            ) from error
        path = model_path(cfg.model_path, what="a GGUF file or a model dir", may_be_dir=True)
        kwargs: dict[str, Any] = {}
        source = str(path)
        if path.is_file():
            source, kwargs["gguf_file"] = str(path.parent), path.name
        torch.set_num_threads(cfg.n_threads)
        self._torch: Any = torch
        self._cache_type: Any = DynamicCache
        self.tokenizer: Any = AutoTokenizer.from_pretrained(source, **kwargs)
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
        self.model: Any = model.eval()
        forward = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward else "past_key_values"
        self._cache: Any = None
        self._cached: list[int] = []
        self.slot = ModelSlot(f"lm.{cfg.name}", clock or LoopClock(), cfg.mode, metrics)
        self._answer_lock = LoopLock()  # the model outlives event loops
        self._warm = False

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def tokens(self, request: LMRequest) -> list[int]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        text = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _evaluate(self, tokens: list[int]) -> Any:
        """Bring the KV cache to ``tokens``, reusing the common prefix; last logits."""
        torch = self._torch
        reused = common_prefix(self._cached, tokens)
        keep = min(reused, len(tokens) - 1)
        if self._cache is None or keep == 0:
            self._cache, keep = self._cache_type(), 0
        elif self._cache.get_seq_length() > keep:
            self._cache.crop(keep - self._cache.get_seq_length())  # negative: tokens to drop
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([tokens[keep:]]),
                use_cache=True,
                **{self._cache_arg: self._cache},
            )
        self._cache = getattr(out, self._cache_arg)
        self._cached = list(tokens)
        return out.logits[0, -1]

    def _pick(self, logits: Any, temperature: float) -> int:
        torch = self._torch
        penalty = self.config.repetition_penalty
        if penalty != 1.0 and self._cached:
            seen = torch.tensor(sorted(set(self._cached[-64:])))
            picked = logits[seen]
            logits = logits.clone()
            logits[seen] = torch.where(picked > 0, picked / penalty, picked * penalty)
        if temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / temperature, dim=-1)
        return int(torch.multinomial(probs, 1))

    async def warmup(self) -> None:
        if self._warm:
            return
        self._warm = True
        async for _ in self.complete(LMRequest((Message("user", "Hi"),), max_tokens=2)):
            pass

    async def prefill(self, request: LMRequest) -> None:
        if self._answer_lock.locked():
            return
        tokens = self.tokens(request)
        async with self._answer_lock:
            await self.slot.call(lambda: self._evaluate(tokens))

    def complete(self, request: LMRequest) -> Completion:
        usage = Usage()
        return Completion(self._generate(request, usage), usage)

    async def _generate(self, request: LMRequest, usage: Usage) -> AsyncIterator[str]:
        tokens = self.tokens(request)
        usage.prompt_tokens = len(tokens)
        eos = {self.tokenizer.eos_token_id, *self._stop_ids()}
        generated: list[int] = []
        stops = StopFilter(request.stop)
        text = ""
        async with self._answer_lock:
            logits = await self.slot.call(lambda: self._evaluate(tokens))
            for _ in range(request.max_tokens):
                token = self._pick(logits, request.temperature)
                if token in eos:
                    break
                generated.append(token)
                usage.completion_tokens += 1
                full = self.tokenizer.decode(generated, skip_special_tokens=True)
                if not full.endswith("\ufffd"):  # wait for a whole UTF-8 character
                    safe, text = stops.feed(full[len(text) :]), full
                    if safe:
                        yield safe
                    if stops.stopped:
                        break
                sequence = [*self._cached, token]
                logits = await self.slot.call(functools.partial(self._evaluate, sequence))
            rest = stops.flush()
            if rest:
                yield rest

    def _stop_ids(self) -> list[int]:
        ids = self.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
        unk = self.tokenizer.unk_token_id
        return [i for i in ids if i is not None and i != unk]
