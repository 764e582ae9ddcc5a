"""The transformers + gguf fallback backend on the bundled GGUF (opt-in: minutes on 2 cores).

Loading dequantises the GGUF to float32 and converts its tokenizer (≈ 1–2 min on this shared
2-core machine), so this runs only with ``STREAMKIT_TEST_TRANSFORMERS=1``.
"""

from __future__ import annotations

import os

import pytest

from streamkit.lm.backend import LMRequest, Message

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("STREAMKIT_TEST_TRANSFORMERS") != "1",
        reason="set STREAMKIT_TEST_TRANSFORMERS=1 (loads torch + dequantises the GGUF: minutes)",
    ),
]


async def test_streams_and_reuses_the_prompt_cache() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate", reason="transformers needs accelerate to load GGUF")
    from streamkit.lm.transformers_backend import TransformersBackend

    backend = TransformersBackend()
    question = LMRequest(
        (
            Message("system", "You are a helpful assistant. Answer briefly."),
            Message("user", "What is the capital of France?"),
        ),
        max_tokens=16,
    )
    await backend.prefill(question)
    completion = backend.complete(question)
    text = "".join([d async for d in completion])
    assert "Paris" in text
    assert completion.usage.completion_tokens >= 3
    # closing early stops generation; the model stays usable
    again = backend.complete(question)
    async for _ in again:
        break
    await again.aclose()
    assert again.usage.completion_tokens == 1
