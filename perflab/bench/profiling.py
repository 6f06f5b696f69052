"""Memory and CPU profiles of a piece of work."""

from __future__ import annotations

import contextlib
import cProfile
import dataclasses
import os
import pstats
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from perflab.errors import BenchmarkError

__all__ = ["MemoryUsage", "memory", "profile"]


@dataclasses.dataclass
class MemoryUsage:
    """Filled in when the ``with bench.memory()`` block ends."""

    peak_rss_mib: float = 0.0  # highest resident set size seen (sampled), whole process
    start_rss_mib: float = 0.0
    tracemalloc_peak_mib: float = 0.0  # peak of Python allocations made inside the block

    @property
    def rss_growth_mib(self) -> float:
        return self.peak_rss_mib - self.start_rss_mib


@contextlib.contextmanager
def memory(interval: float = 0.005) -> Iterator[MemoryUsage]:
    """Peak RSS (memory-profiler's reading of this process, sampled every ``interval`` s in a
    thread) and the tracemalloc peak of the block."""
    from memory_profiler import memory_usage

    def rss() -> float:  # MiB, the highest reading over one interval
        return float(memory_usage(-1, interval=interval, timeout=interval, max_usage=True))

    usage = MemoryUsage(start_rss_mib=rss())
    usage.peak_rss_mib = usage.start_rss_mib
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            usage.peak_rss_mib = max(usage.peak_rss_mib, rss())

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    sampler = threading.Thread(target=sample, name="perflab-memory", daemon=True)
    sampler.start()
    try:
        yield usage
    finally:
        stop.set()
        sampler.join()
        usage.peak_rss_mib = max(usage.peak_rss_mib, rss())
        usage.tracemalloc_peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        if not was_tracing:
            tracemalloc.stop()


def profile(fn: Callable[[], Any], *, top: int = 20, repeat: int = 1) -> pd.DataFrame:
    """cProfile ``fn`` (called ``repeat`` times); the ``top`` functions by cumulative time."""
    if not callable(fn):
        raise BenchmarkError(f"profile: {fn!r} is not callable")
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        for _ in range(repeat):
            fn()
    finally:
        profiler.disable()
    rows = []
    for (path, line, func), (cc, nc, tt, ct, _) in pstats.Stats(profiler).stats.items():
        rows.append(
            {
                "function": func,
                "where": f"{os.path.basename(path)}:{line}",
                "calls": nc,
                "primitive_calls": cc,
                "total_s": tt,
                "cumulative_s": ct,
            }
        )
    frame = pd.DataFrame(rows).sort_values("cumulative_s", ascending=False)
    return frame.head(top).reset_index(drop=True)
