"""The default local backend with the real SmolLM2-135M GGUF (slow: real model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamkit.lm.backend import BackendUnavailable, LMRequest, Message
from streamkit.lm.fusion import DEFAULT_SYSTEM_PROMPT

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed")

from streamkit.lm.llamacpp import LlamaCppBackend, LlamaCppConfig  # noqa: E402

pytestmark = pytest.mark.slow
shared_loop = pytest.mark.asyncio(loop_scope="module")  # the backend's locks live on one loop


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    return LlamaCppBackend(LlamaCppConfig(n_threads=2))


def ask(question: str, max_tokens: int = 48) -> LMRequest:
    return LMRequest(
        (Message("system", DEFAULT_SYSTEM_PROMPT), Message("user", question)),
        max_tokens=max_tokens,
    )


@shared_loop
async def test_streams_an_answer_with_usage(backend: LlamaCppBackend) -> None:
    completion = backend.complete(ask("What is the capital of France?"))
    deltas = [d async for d in completion]
    text = "".join(deltas)
    assert len(deltas) >= 3
    assert "Paris" in text
    assert completion.finished
    assert completion.usage.completion_tokens >= len(deltas)
    assert completion.usage.prompt_tokens == len(
        backend.tokens(ask("What is the capital of France?"))
    )


@shared_loop
async def test_prefix_is_reused_and_prefill_leaves_nothing_to_evaluate(
    backend: LlamaCppBackend,
) -> None:
    system_tokens = backend.count_tokens(DEFAULT_SYSTEM_PROMPT)
    first = backend.complete(ask("Name a colour."))
    _ = [d async for d in first]
    second_request = ask("Name an animal.")
    second = backend.complete(second_request)
    _ = [d async for d in second]
    assert second.usage.prompt_cached >= system_tokens  # the system prompt was not re-evaluated
    third_request = ask("Name a fruit that is yellow.")
    await backend.prefill(third_request)
    tokens = backend.tokens(third_request)
    assert backend.cached_prefix(tokens) == len(tokens)
    third = backend.complete(third_request)
    assert [d async for d in third]
    assert third.usage.prompt_cached >= third.usage.prompt_tokens - 1


@shared_loop
async def test_closing_stops_generation_and_the_model_stays_usable(
    backend: LlamaCppBackend,
) -> None:
    completion = backend.complete(ask("Count from one to fifty, in words.", max_tokens=200))
    got = []
    async for delta in completion:
        got.append(delta)
        if len(got) == 3:
            break
    await completion.aclose()
    assert completion.usage.completion_tokens == 3
    again = backend.complete(ask("What is the capital of France?"))
    assert "Paris" in "".join([d async for d in again])


@shared_loop
async def test_stop_strings_and_max_tokens(backend: LlamaCppBackend) -> None:
    messages = (Message("user", "Count from 1 to 10, separated by commas."),)
    capped = backend.complete(LMRequest(messages, max_tokens=5))
    _ = [d async for d in capped]
    assert capped.usage.completion_tokens == 5
    stopped = backend.complete(LMRequest(messages, max_tokens=40, stop=(",",)))
    text = "".join([d async for d in stopped])
    assert text.strip()
    assert "," not in text
    assert stopped.usage.completion_tokens < 40


def test_missing_model_file_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="GGUF"):
        LlamaCppBackend(LlamaCppConfig(model_path=tmp_path / "nope.gguf"))


@shared_loop
async def test_prompt_threads_apart_from_generation_threads_answer_the_same() -> None:
    """``n_threads_batch`` evaluates prompts on two threads while tokens are generated on
    one; greedy answers are the same as on one thread throughout."""
    request = ask("What is the capital of Italy? " + "Answer in one word. " * 6, max_tokens=12)
    texts, usages = [], []
    for batch in (1, 2):
        model = LlamaCppBackend(
            LlamaCppConfig(n_threads=1, n_threads_batch=batch, mode="virtual", charge="cpu")
        )
        assert model._llm.n_threads_batch == batch
        completion = model.complete(request)
        texts.append("".join([d async for d in completion]))
        usages.append(completion.usage)
    assert texts[0] == texts[1]
    assert "Rome" in texts[0]
    assert all(u.compute_ns > 0 for u in usages)


def test_a_fixed_token_charge_is_the_work_of_the_call() -> None:
    """With a :class:`TokenCharge`, a virtual replay's clock moves by the prompt tokens
    evaluated and the tokens generated, not by what the machine measured; the usage counts
    the same cost. The second, identical request is charged only its uncached prompt rest."""
    from streamkit.core.clock import LoopClock
    from streamkit.lm.backend import TokenCharge, Usage
    from streamkit.testing.replay import run_on_virtual_loop

    charge = TokenCharge(prompt_ns=1_000_000, token_ns=10_000_000)
    model = LlamaCppBackend(LlamaCppConfig(n_threads=1, mode="virtual", charge=charge))
    request = ask("What is the capital of Italy?", max_tokens=8)

    async def answer() -> tuple[int, Usage]:
        clock = LoopClock()
        start = clock.now()
        completion = model.complete(request)
        async for _ in completion:
            pass
        return clock.now() - start, completion.usage

    for _ in range(2):
        elapsed, usage = run_on_virtual_loop(answer())
        steps = usage.completion_tokens + (usage.completion_tokens < request.max_tokens)
        fresh = usage.prompt_tokens - min(usage.prompt_cached, usage.prompt_tokens - 1)
        assert elapsed == usage.compute_ns == charge.cost(fresh, steps)
    assert usage.prompt_cached > 0  # the second time, the prompt's prefix was reused
    assert fresh < usage.prompt_tokens
