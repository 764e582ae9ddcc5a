"""``streamkit serve`` in this process, memory sampled from inside (``bench/soak.py --inspect``).

Usage: ``python -m bench._soak_server OUT.jsonl EVERY_S -- <streamkit serve arguments>``.
A daemon thread appends one JSON line every ``EVERY_S`` seconds: RSS (``/proc/self/status``),
glibc's heap (``mallinfo2``: bytes in use, free bytes kept in the arenas, bytes in mmapped
chunks) and, when ``PYTHONTRACEMALLOC`` is set, the Python heap (``tracemalloc``) with the
10 source lines whose allocations grew most since the first sample.
"""

from __future__ import annotations

import json
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

from streamkit.cli import main as streamkit_main
from streamkit.commands.heap import heap_stats

__all__ = ["main"]


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _sample(path: Path, every_s: float, stop: threading.Event) -> None:
    first: tracemalloc.Snapshot | None = None
    with path.open("a") as out:
        while not stop.wait(every_s):
            record: dict[str, Any] = {"rss": _rss_bytes()}
            heap = heap_stats()
            if heap is not None:
                record["malloc_in_use"] = heap.in_use
                record["malloc_free"] = heap.free
                record["malloc_mmapped"] = heap.mmapped
            if tracemalloc.is_tracing():
                record["python"] = tracemalloc.get_traced_memory()[0]
                snapshot = tracemalloc.take_snapshot()
                if first is None:
                    first = snapshot
                record["top"] = [
                    f"{stat.size_diff / 1e6:+.2f} MB {stat.traceback}"
                    for stat in snapshot.compare_to(first, "lineno")[:10]
                ]
            out.write(json.dumps(record) + "\n")
            out.flush()


def main() -> int:
    path, every_s, sep, *serve_args = sys.argv[1:]
    assert sep == "--", "usage: _soak_server OUT.jsonl EVERY_S -- <serve arguments>"
    stop = threading.Event()
    thread = threading.Thread(target=_sample, args=(Path(path), float(every_s), stop), daemon=True)
    thread.start()
    try:
        return streamkit_main(["serve", *serve_args])
    finally:
        stop.set()


if __name__ == "__main__":
    sys.exit(main())
