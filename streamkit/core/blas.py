"""Numpy's BLAS kept to one thread while a real-time model call runs (process-wide, counted).

OpenBLAS starts a worker thread per core for every matrix product above a tiny size and then
leaves those workers spinning for a while. In a real-time process on a few cores that spin
takes a core from the next model call: measured here after one Smart Turn call (its log-mel
projection, an (80, 201) @ (201, 801) product) the following Whisper decode cost 140 ms of
process CPU for 90 ms of its own work, and Smart Turn itself 100-130 ms of CPU for 55 ms of
work. Inside :func:`single_threaded_blas` every product runs on the calling thread.

The limit is process-wide (BLAS has one thread count), so it is counted: the first of
overlapping holders sets it, the last one restores the previous setting. Without
``threadpoolctl`` installed it is a no-op (costs CPU only).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["single_threaded_blas"]

_lock = threading.Lock()
_holders = 0
_limit: contextlib.AbstractContextManager[Any] | None = None


@functools.cache
def _threadpools() -> Any:
    """threadpoolctl's controller (found once per process), or None without it."""
    try:  # imported by name: threadpoolctl ships no type information
        return importlib.import_module("threadpoolctl").ThreadpoolController()
    except ImportError:  # pragma: no cover - optional: only costs CPU
        return None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with numpy's BLAS on one thread (see the module docstring)."""
    global _holders, _limit
    with _lock:
        controller = _threadpools()
        if controller is not None and _holders == 0:
            limit: contextlib.AbstractContextManager[Any] = controller.limit(
                limits=1, user_api="blas"
            )
            limit.__enter__()
            _limit = limit
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _limit is not None:
                _limit.__exit__(None, None, None)
                _limit = None
