"""Native heap bounds for a long-running process (``streamkit serve``); glibc only.

Why: under steady load the server's RSS crept (+8–10 MB per 30 s with four real-time
sessions) while the Python heap stayed flat (``tracemalloc``: −1 MB over 3 minutes, see
``bench/soak.py --inspect --tracemalloc``). The growth was native: the models' code
(CTranslate2's Whisper decodes on their worker threads, llama.cpp, onnxruntime) allocates and
frees buffers of varying sizes on many threads, glibc gives each thread an arena of its own (up
to 8 per core) and keeps what is freed in the arena — free memory that counts in RSS and that
the next, differently sized decode on another thread does not reuse. Nothing leaks, but
nothing bounds it either. (Live allocations that grew were a separate cause, bounded where
they are made: CTranslate2 caches oneDNN primitives per input shape, so the Whisper encoder
sees a bounded set of lengths, ``streamkit.asr.whisper.encode_frames``; ``bench/native_heap.py``.)
Two bounds, both cheap:

- :func:`limit_arenas`: at most ``n`` arenas (``mallopt(M_ARENA_MAX)``), called before the
  model threads start, so freed blocks are shared and reused across threads;
- :func:`trimming`: every ``interval_s`` ``malloc_trim(0)``, which returns the free pages of
  every arena to the OS (``madvise``), on a worker thread (it takes the arena locks for
  milliseconds).

On a libc without these calls (musl, macOS) both do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from streamkit.core.clock import NS_PER_S, Clock, LoopClock

__all__ = ["HeapStats", "heap_stats", "limit_arenas", "trim", "trimming"]

M_ARENA_MAX = -8
"""``mallopt`` parameter number of ``M_ARENA_MAX`` in glibc's ``malloc.h``."""


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@dataclass(frozen=True, slots=True)
class HeapStats:
    """glibc's heap (bytes): ``in_use`` by live blocks (mmapped ones included), ``free`` kept
    in the arenas, ``mmapped`` in large blocks of their own."""

    in_use: int
    free: int
    mmapped: int


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):  # not glibc (or glibc < 2.33: no mallinfo2)
        return None
    return libc


def limit_arenas(n: int) -> bool:
    """Use at most ``n`` malloc arenas from now on (call before starting threads)."""
    libc = _libc()
    return libc is not None and bool(libc.mallopt(M_ARENA_MAX, n))


def trim() -> bool:
    """Return the free pages of every arena to the OS; True if any were released."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))


def heap_stats() -> HeapStats | None:
    """The heap now (None without glibc)."""
    libc = _libc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return HeapStats(info.uordblks + info.hblkhd, info.fordblks, info.hblkhd)


@contextlib.asynccontextmanager
async def trimming(interval_s: float = 30.0, clock: Clock | None = None) -> AsyncIterator[None]:
    """Trim the heap every ``interval_s`` while the block runs (a no-op without glibc)."""
    clock = clock if clock is not None else LoopClock()

    async def loop() -> None:
        while True:
            await clock.sleep(round(interval_s * NS_PER_S))
            await asyncio.to_thread(trim)

    async with asyncio.TaskGroup() as group:
        task = group.create_task(loop(), name="heap-trim")
        try:
            yield
        finally:
            task.cancel()
