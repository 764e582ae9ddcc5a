"""Several sources as one source stage (e.g. a microphone and a camera).

The assistant pipeline takes *one* source stage with ports ``"audio"`` and optionally
``"video"``. :class:`CombinedSource` runs parts that write different ports (a
:class:`~streamkit.sources.mic.MicSource` on ``"audio"``, a
:class:`~streamkit.sources.camera.CameraSource` on ``"video"``) under one stage: setup runs
every part's setup, run runs every part in one TaskGroup, and they share the stage's context
(ports, clock, metrics, ``stopping``). The stage returns when every part has returned; a
part that raises stops the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

from streamkit.core.stage import StageContext

__all__ = ["CombinedSource"]


class CombinedSource:
    """Run ``parts`` as one source stage; their ``outputs`` must not overlap."""

    def __init__(self, *parts: Any, name: str = "capture") -> None:
        if not parts:
            raise ValueError("CombinedSource needs at least one part")
        seen: dict[str, str] = {}
        for part in parts:
            for port in part.outputs:
                if port in seen:
                    raise ValueError(
                        f"port {port!r} is written by {seen[port]!r} and {part.name!r}"
                    )
                seen[port] = part.name
        self.parts = parts
        self.name = name
        self.outputs: tuple[str, ...] = tuple(seen)
        self.metadata: dict[str, Any] = {p.name: getattr(p, "metadata", {}) for p in parts}

    async def setup(self, ctx: StageContext) -> None:
        for part in self.parts:
            await part.setup(ctx)

    async def run(self, ctx: StageContext) -> None:
        async with asyncio.TaskGroup() as group:
            for part in self.parts:
                group.create_task(part.run(ctx), name=f"{self.name}:{part.name}")
