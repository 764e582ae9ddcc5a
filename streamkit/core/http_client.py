"""The HTTP client every OpenAI-compatible engine uses (LM, speech): one place that imports
``httpx`` lazily and builds the pooled client with the base URL, bearer key and timeout."""

from __future__ import annotations

from typing import Any

__all__ = ["openai_compatible_client"]


def openai_compatible_client(
    base_url: str, api_key: str | None, timeout_s: float, transport: Any = None
) -> tuple[Any, Any]:
    """Returns ``(httpx, client)``: the module (for its exception types) and an
    ``httpx.AsyncClient`` whose relative paths resolve under ``base_url``; the caller owns the
    client and closes it. Raises ImportError when httpx is not installed (the caller turns it
    into its package's ``...Unavailable`` with what to install)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client = httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        headers=headers,
        timeout=httpx.Timeout(timeout_s),
        transport=transport,
    )
    return httpx, client
