"""The async stream a provider returns for one call (an LM completion, a TTS synthesis).

A :class:`GeneratorStream` wraps the engine's async generator: iterate it for the values,
``aclose`` stops the generator (idempotent), ``finished`` turns True once every value was
delivered. The caller owns the stream and must iterate it to the end or ``aclose`` it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Generic, Self, TypeVar

__all__ = ["GeneratorStream"]

T = TypeVar("T")


@dataclass(slots=True)
class GeneratorStream(Generic[T]):
    """Async-iterate for the engine's values; ``aclose`` stops its generator (idempotent)."""

    _gen: AsyncIterator[T]
    finished: bool = field(default=False, init=False)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._gen.__anext__()
        except StopAsyncIteration:
            self.finished = True
            raise

    async def aclose(self) -> None:
        aclose = getattr(self._gen, "aclose", None)
        if aclose is not None:
            await aclose()
