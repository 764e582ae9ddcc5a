"""Guards over the source tree (AST, not grep, so comments and strings do not count).

1. Time is read and waited on only through :mod:`streamkit.core.clock`: no ``time.time()``,
   ``time.sleep()`` or ``asyncio.sleep()`` in ``streamkit/`` or ``pipelines/`` outside
   ``streamkit/core/clock.py`` (``time.perf_counter*`` measures compute cost and is allowed).
2. Structured concurrency: no bare ``create_task`` / ``ensure_future``; only
   ``<group>.create_task`` on a TaskGroup (a receiver named ``…group`` or ``tg``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("streamkit", "pipelines")
CLOCK_MODULE = ROOT / "streamkit" / "core" / "clock.py"
BANNED_CALLS = {("time", "time"), ("time", "sleep"), ("asyncio", "sleep")}
BANNED_IMPORTS = {("time", "time"), ("time", "sleep"), ("asyncio", "sleep")}


def sources() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 10, "guard found too few files: wrong root?"
    return files


def _task_group_names(tree: ast.AST) -> set[str]:
    """Names bound to ``TaskGroup()`` (``async with TaskGroup() as x``, ``x = TaskGroup()``)."""
    names: set[str] = set()

    def is_tg(expr: ast.expr | None) -> bool:
        return isinstance(expr, ast.Call) and ast.unparse(expr.func).endswith("TaskGroup")

    for node in ast.walk(tree):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if is_tg(item.context_expr) and item.optional_vars is not None:
                    names.add(ast.unparse(item.optional_vars))
        elif isinstance(node, ast.Assign) and is_tg(node.value):
            names.update(ast.unparse(target) for target in node.targets)
    return names


def _is_group(receiver: ast.expr, groups: set[str]) -> bool:
    text = ast.unparse(receiver)
    name = text.rsplit(".", 1)[-1].lower()
    return text in groups or name.endswith("group") or name in {"tg", "_tg"}


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    rel = path.relative_to(ROOT)
    time_checks = path != CLOCK_MODULE
    groups = _task_group_names(tree)
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if time_checks and isinstance(node, ast.ImportFrom) and node.module in {"time", "asyncio"}:
            for alias in node.names:
                if (node.module, alias.name) in BANNED_IMPORTS:
                    found.append(f"{where}: from {node.module} import {alias.name}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = func.value
            if (
                time_checks
                and isinstance(receiver, ast.Name)
                and (receiver.id, func.attr) in BANNED_CALLS
            ):
                found.append(f"{where}: {receiver.id}.{func.attr}() — use the Clock")
            if func.attr == "ensure_future" or (
                func.attr == "create_task" and not _is_group(receiver, groups)
            ):
                found.append(f"{where}: {ast.unparse(func)}() outside a TaskGroup")
        elif isinstance(func, ast.Name) and func.id in {"create_task", "ensure_future"}:
            found.append(f"{where}: bare {func.id}()")
    return found


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_raw_time_or_bare_tasks(path: Path) -> None:
    assert violations(path) == []


def test_guard_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import asyncio, time\n"
        "from time import sleep\n"
        "async def f(loop, group):\n"
        "    time.sleep(1); time.time(); await asyncio.sleep(0)\n"
        "    asyncio.create_task(f()); loop.create_task(f()); asyncio.ensure_future(f())\n"
        "    group.create_task(f())  # fine\n"
        "    async with asyncio.TaskGroup() as workers:\n"
        "        workers.create_task(f())  # fine\n"
        "    # time.sleep(1) in a comment is fine\n"
        "    time.perf_counter_ns()  # fine: compute cost\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = violations(bad)
    finally:
        ROOT = saved
    assert len(found) == 7, found
