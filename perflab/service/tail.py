"""What makes the optimised service's tail: garbage-collector pauses (``gc.callbacks``), event-
loop stalls (a probe timer that wakes late because something held the loop) and cache loads
(misses and refresh-ahead reloads, whose computation runs on the loop). ``GET /metrics/tail``
reads (and with ``reset=1`` restarts) these counters, so a load run can say which one it met."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["STALL_MS", "TailWatch", "stall_cause"]

STALL_MS = 2.0  # a probe that wakes this much late found the loop held (epoll adds up to 1 ms)
TICK = 0.005


class _Counter:
    __slots__ = ("max_ms", "n", "total_ms")

    def __init__(self) -> None:
        self.n, self.total_ms, self.max_ms = 0, 0.0, 0.0

    def add(self, ms: float) -> None:
        self.n += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "total_ms": round(self.total_ms, 3), "max_ms": round(self.max_ms, 3)}


def stall_cause(late_ms: float, ran_ms: float, waited_ms: float) -> str:
    """``held``, ``preempted`` or ``blocked``: whichever of running, waiting for a core and
    neither (blocked) took the largest share of a stall."""
    blocked_ms = max(0.0, late_ms - ran_ms - waited_ms)
    shares = {"held": ran_ms, "preempted": waited_ms, "blocked": blocked_ms}
    return max(shares, key=shares.__getitem__)


class _Schedstat:
    """This thread's (CPU ns, run-queue wait ns) from /proc/thread-self/schedstat; where that
    is missing, (thread CPU time, 0): stalls that did not run then count as blocked."""

    def __init__(self) -> None:
        try:
            self.fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self.fd = None

    def read(self) -> tuple[int, int]:
        if self.fd is None:
            return time.thread_time_ns(), 0
        ran, waited, _ = os.pread(self.fd, 128, 0).split()
        return int(ran), int(waited)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class TailWatch:
    """Counters of GC pauses (by generation), loop stalls and cache loads since the last reset."""

    def __init__(self) -> None:
        self._gc_start = 0.0
        self._task: asyncio.Task | None = None
        self.reset()

    def reset(self) -> None:
        self.gc = {g: _Counter() for g in (0, 1, 2)}
        self.stalls = _Counter()
        self.held = _Counter()  # stalls during which the loop's thread ran
        self.preempted = _Counter()  # stalls during which it waited for a core
        self.blocked = _Counter()  # stalls during which it neither ran nor waited: blocked
        self.loads = _Counter()
        self.since = time.time()

    # --- GC ---------------------------------------------------------------------------------
    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc[info["generation"]].add((time.perf_counter() - self._gc_start) * 1e3)

    # --- loop stalls --------------------------------------------------------------------------
    async def _probe(self) -> None:
        """Each stall by what the loop's thread did meanwhile (Linux ``schedstat``: its CPU
        time and its time waiting in a run queue): *held* when it mostly ran (code on the loop
        kept it), *preempted* when it mostly waited for a core (the machine, not the
        service), *blocked* otherwise (a blocking call on the loop: sleep, sync I/O)."""
        stat = _Schedstat()
        try:
            while True:
                t0, (run0, wait0) = time.perf_counter(), stat.read()
                await asyncio.sleep(TICK)
                late_ms = (time.perf_counter() - t0 - TICK) * 1e3
                if late_ms > STALL_MS:
                    run1, wait1 = stat.read()
                    self.stalls.add(late_ms)
                    self._kind(late_ms, (run1 - run0) / 1e6, (wait1 - wait0) / 1e6).add(late_ms)
        finally:
            stat.close()

    def _kind(self, late_ms: float, ran_ms: float, waited_ms: float) -> _Counter:
        return getattr(self, stall_cause(late_ms, ran_ms, waited_ms))

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._probe())

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()

    # --- loads ----------------------------------------------------------------------------------
    def timed(self, load: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """``load`` counted: every call is a miss or a refresh-ahead reload."""

        async def counted() -> Any:
            t0 = time.perf_counter()
            try:
                return await load()
            finally:
                self.loads.add((time.perf_counter() - t0) * 1e3)

        return counted

    def snapshot(self) -> dict[str, Any]:
        return {
            "seconds": round(time.time() - self.since, 3),
            "gc": {str(g): c.as_dict() for g, c in self.gc.items()},
            "stalls": {
                **self.stalls.as_dict(),
                "threshold_ms": STALL_MS,
                "held": self.held.as_dict(),
                "preempted": self.preempted.as_dict(),
                "blocked": self.blocked.as_dict(),
            },
            "loads": self.loads.as_dict(),
        }
