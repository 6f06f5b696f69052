"""Signs of a noisy machine, recorded beside every measurement: the load average, how much CPU
other processes used while it ran, and how much of the wall time this process was on a CPU.

A comparison of two runs can only be as fair as the conditions of both: a run measured while a
CI neighbour spun on one of two cores is not the same experiment as a quiet one, and saying so
beats a confident verdict. The machine's CPU time comes from psutil (``/proc/stat`` on Linux,
the same figures read by a library that also knows macOS and Windows).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["BUSY_CORES", "busy_note", "probe"]

BUSY_CORES = 0.3  # other processes using this much of a core on average: a busy machine


def _machine_busy_seconds() -> float | None:
    """Seconds of CPU time all processes have used since boot (every state but idle/iowait)."""
    import psutil

    try:
        times = psutil.cpu_times()
    except (OSError, RuntimeError):  # no /proc (a sandbox): the load average still says
        return None
    # guest time is already inside user time, so it is not added (as /proc/stat's own rule)
    states = ("user", "nice", "system", "irq", "softirq", "steal")
    return float(sum(getattr(times, name, 0.0) for name in states))


@contextmanager
def probe() -> Iterator[dict[str, Any]]:
    """Measure the noise signs over the ``with`` block; the yielded dict is filled at exit with
    ``loadavg`` (1 min, at start), ``other_cores`` (CPU cores used on average by *other*
    processes), ``cpu_per_wall`` (this process's CPU time / wall time) and ``seconds``."""
    signs: dict[str, Any] = {}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    wall0, cpu0, busy0 = time.perf_counter(), time.process_time(), _machine_busy_seconds()
    try:
        yield signs
    finally:
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        busy1 = _machine_busy_seconds()
        others = None
        if busy0 is not None and busy1 is not None and wall > 0:
            # jiffies are coarse (10 ms): clamp the small negative values that rounding makes
            others = max(0.0, (busy1 - busy0 - cpu) / wall)
        signs.update(
            loadavg=load,
            other_cores=None if others is None else round(others, 3),
            cpu_per_wall=round(cpu / wall, 3) if wall > 0 else None,
            seconds=round(wall, 3),
        )


def busy_note(label: str, meta: Mapping[str, Any]) -> str | None:
    """A sentence when ``meta['noise']`` shows a busy machine, else None."""
    signs = meta.get("noise") if isinstance(meta, Mapping) else None
    if not isinstance(signs, Mapping):
        return None
    others = signs.get("other_cores")
    if isinstance(others, int | float) and others >= BUSY_CORES:
        return (
            f"the {label} ran on a busy machine: other processes used {others:.1f} CPU cores "
            "meanwhile; rerun both on a quiet machine before trusting a small change"
        )
    return None
