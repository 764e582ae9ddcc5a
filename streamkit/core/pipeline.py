"""Wiring stages with bounded edges and running them under one ``asyncio.TaskGroup``.

Lifecycle of :meth:`Pipeline.run`:

1. **setup** every stage (models load, devices open) — concurrently;
2. set ``base_time`` = ``clock.now()`` (readiness handshake: nothing is stamped before);
3. **run** every stage as a task of one TaskGroup; a stage that returns has its outputs
   closed (end of stream flows downstream in band) and its inputs abandoned (producers
   upstream no longer wait on it: their packets are dropped and counted);
4. return when every stage has returned.

``drain()`` asks sources (stages that watch ``ctx.stopping``) to finish, so everything in
flight is processed; ``abort()`` cancels every stage at once. A stage that raises stops the
whole pipeline and :meth:`run` raises :class:`StageFailed` naming it. No task outlives
``run``.

Inline function stages (``inline=True``, see :mod:`streamkit.core.stage`) still get a task: it
serves the items that were queued rather than pushed, and it is the one that raises when a
function fails in a producer's task, so :class:`StageFailed` names the inline stage, not the
producer. The lifecycle above is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streamkit.core.clock import Clock, LoopClock, Nanos
from streamkit.core.edge import Edge, EdgeStats, Policy
from streamkit.core.metrics import MetricsRegistry
from streamkit.core.stage import Stage, StageContext

__all__ = ["Pipeline", "PipelineState", "StageFailed"]


class StageFailed(Exception):
    """A stage raised; ``stage`` names it and ``__cause__`` is the original error.

    An exception group with a single leaf (a stage running its own TaskGroup) is unwrapped
    to that leaf, so ``error`` is the exception that actually happened.
    """

    def __init__(self, stage: str, phase: str, error: BaseException) -> None:
        error = _single_leaf(error)
        super().__init__(f"stage {stage!r} failed during {phase}: {error!r}")
        self.stage = stage
        self.phase = phase
        self.error = error


@dataclass
class PipelineState:
    """Where a pipeline is: ``new`` → ``setup`` → ``running`` → ``done``."""

    phase: str = "new"
    aborted: bool = False
    base_time: Nanos | None = None


@dataclass
class _Node:
    stage: Stage
    ctx: StageContext


class Pipeline:
    """A graph of stages joined by bounded edges.

    Args:
        clock: the shared clock (default: the running loop's clock).
        metrics: registry the ports record into (default: a new one).
    """

    def __init__(self, clock: Clock | None = None, metrics: MetricsRegistry | None = None) -> None:
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.metrics = metrics if metrics is not None else MetricsRegistry()
        self.state = PipelineState()
        self._edges: dict[str, Edge[Any]] = {}
        self._nodes: list[_Node] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.metrics.watch_edges(self.edge_stats)

    # -- wiring --------------------------------------------------------------------------

    def edge(self, name: str, capacity: int = 8, policy: Policy = Policy.BLOCK) -> Edge[Any]:
        """Create a named bounded edge."""
        if name in self._edges:
            raise ValueError(f"edge {name!r} already exists")
        edge: Edge[Any] = Edge(name, capacity, policy)
        self._edges[name] = edge
        return edge

    def add(
        self,
        stage: Stage,
        inputs: Mapping[str, Edge[Any]] | None = None,
        outputs: Mapping[str, Edge[Any]] | None = None,
    ) -> StageContext:
        """Add ``stage`` reading ``inputs`` and writing ``outputs`` (port name → edge)."""
        if any(node.stage.name == stage.name for node in self._nodes):
            raise ValueError(f"a stage named {stage.name!r} already exists")
        ctx = StageContext(
            name=stage.name,
            clock=self.clock,
            metrics=self.metrics,
            inputs=dict(inputs or {}),
            outputs=dict(outputs or {}),
            drain_requested=self._stopping,
        )
        self._nodes.append(_Node(stage, ctx))
        return ctx

    @property
    def stages(self) -> list[Stage]:
        return [node.stage for node in self._nodes]

    def edges(self) -> Iterable[Edge[Any]]:
        return self._edges.values()

    def edge_stats(self) -> list[EdgeStats]:
        return [edge.stats() for edge in self._edges.values()]

    # -- control -------------------------------------------------------------------------

    def drain(self) -> None:
        """Ask sources to finish; everything already in flight is still processed."""
        self._stopping.set()

    def abort(self) -> None:
        """Cancel every stage now (also during setup); ``run`` returns, ``state.aborted`` set."""
        self.state.aborted = True
        self._stopping.set()
        for task in self._tasks:
            task.cancel()

    async def run(self) -> None:
        """Set up, start and run every stage to completion (see the module docstring)."""
        if self.state.phase != "new":
            raise RuntimeError("a pipeline runs once")
        self.state.phase = "setup"
        try:
            async with asyncio.TaskGroup() as group:
                for node in self._nodes:
                    task = group.create_task(self._setup(node), name=f"setup:{node.stage.name}")
                    self._tasks.append(task)
            self._tasks.clear()
            base = self.clock.now()
            self.state.base_time = base
            for node in self._nodes:
                node.ctx.base_time = base
            self.state.phase = "running"
            if not self.state.aborted:
                async with asyncio.TaskGroup() as group:
                    for node in self._nodes:
                        task = group.create_task(self._run(node), name=f"stage:{node.stage.name}")
                        self._tasks.append(task)
        except BaseExceptionGroup as group_error:
            failures = group_error.subgroup(StageFailed)
            if failures is not None:
                first = _first_leaf(failures)
                raise first from first.error
            raise
        finally:
            self._tasks.clear()
            self.state.phase = "done"

    async def _setup(self, node: _Node) -> None:
        try:
            await node.stage.setup(node.ctx)
        except asyncio.CancelledError:
            if self.state.aborted:
                return
            raise
        except Exception as error:
            failure = StageFailed(node.stage.name, "setup", error)
            raise failure from failure.error

    async def _run(self, node: _Node) -> None:
        try:
            await node.stage.run(node.ctx)
        except asyncio.CancelledError:
            if self.state.aborted:
                return
            raise
        except Exception as error:
            for edge in node.ctx.outputs.values():
                edge.close(error=repr(_single_leaf(error)))
            failure = StageFailed(node.stage.name, "run", error)
            raise failure from failure.error
        finally:
            for edge in node.ctx.outputs.values():
                edge.close()
            for edge in node.ctx.inputs.values():
                edge.abandon()


def _single_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _first_leaf(group: BaseExceptionGroup[StageFailed]) -> StageFailed:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_leaf(error)
        return error
    raise AssertionError("empty exception group")
