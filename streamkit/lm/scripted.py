"""A scripted backend that charges virtual time: for tests and demos without a model.

:class:`ScriptedBackend` answers with a fixed text (or a function of the request), one
word-ish token at a time, waiting ``token_ns`` on the clock per generated token and
``prompt_token_ns`` per prompt character-token that is *not* already in its simulated
prompt cache (the longest common prefix with the last evaluated prompt, like a KV cache).
On a virtual-time loop (looptime) this reproduces the latency structure of a real local
model in zero wall time. It never blocks the loop.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from streamkit.core.clock import Clock, LoopClock, Nanos
from streamkit.lm.backend import Completion, LMRequest, Usage, approx_token_count

__all__ = ["ScriptedBackend", "render_plain"]


def render_plain(request: LMRequest) -> str:
    """A ChatML-like flat rendering (what the scripted cache compares)."""
    return "".join(f"<{m.role}>{m.content}</{m.role}>" for m in request.messages) + "<assistant>"


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class ScriptedBackend:
    """Fake LM: deterministic text, virtual cost per token.

    Attributes:
        reply: the answer text, or a function from the request to it.
        token_ns: cost of each generated token (ns of clock time).
        prompt_token_ns: cost per uncached prompt token (≈ 4 characters).
        clock: where costs are charged (default: the running loop's clock).
        requests / prefills: every request seen (for assertions).
    """

    reply: str | Callable[[LMRequest], str] = "Hello there, how can I help?"
    token_ns: Nanos = 10_000_000
    prompt_token_ns: Nanos = 2_000_000
    clock: Clock = field(default_factory=LoopClock)
    name: str = "scripted"
    requests: list[LMRequest] = field(default_factory=list)
    prefills: list[LMRequest] = field(default_factory=list)
    generated: int = 0
    _cached: str = ""

    def count_tokens(self, text: str) -> int:
        return approx_token_count(text)

    async def warmup(self) -> None:
        return None

    async def _evaluate(self, prompt: str) -> int:
        reused = _common_prefix(self._cached, prompt)
        fresh = approx_token_count(prompt[reused:])
        self._cached = prompt
        await self.clock.sleep(fresh * self.prompt_token_ns)
        return reused // 4

    async def prefill(self, request: LMRequest) -> None:
        self.prefills.append(request)
        await self._evaluate(render_plain(request))

    def complete(self, request: LMRequest) -> Completion:
        self.requests.append(request)
        usage = Usage()
        return Completion(self._generate(request, usage), usage)

    async def _generate(self, request: LMRequest, usage: Usage) -> AsyncIterator[str]:
        prompt = render_plain(request)
        usage.prompt_tokens = approx_token_count(prompt)
        fresh = approx_token_count(prompt[_common_prefix(self._cached, prompt) :])
        usage.prompt_cached = await self._evaluate(prompt)
        usage.compute_ns += fresh * self.prompt_token_ns
        text = self.reply(request) if callable(self.reply) else self.reply
        for piece in re.findall(r"\s*\S+", text)[: request.max_tokens]:
            await self.clock.sleep(self.token_ns)
            usage.compute_ns += self.token_ns
            usage.completion_tokens += 1
            self.generated += 1
            self._cached += piece
            yield piece
