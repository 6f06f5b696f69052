"""The two drivers that run plans (see :mod:`perflab.cache.plans`): ``_run`` calls the tiers'
sync methods, ``_arun`` awaits their async twins. A plan yields ``(method, i, args)``: ``i >= 0``
is tier ``i``; ``i < 0`` a cache-local step (``fill``, ``wait``, ``invoke``, ``size``), which the
async driver runs through its ``_a<step>`` twin when there is one.

Both drivers decide failures the same way (``_failed``), count and sample each tier operation,
delete unreadable entries, and put the tier's name (and the key) on errors they let through.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import queue
import threading
import time
from collections.abc import Generator
from typing import Any

from perflab.cache.entry import CorruptEntry
from perflab.cache.stats import TierStats
from perflab.cache.tier import Tier, TierUnavailable
from perflab.errors import CacheError

__all__ = ["Drivers", "TierPlan"]

log = logging.getLogger("perflab.cache")
TierPlan = Generator[tuple[str, int, tuple[Any, ...]], Any, Any]
_READS = {"get", "get_many"}
_POLL = 0.01  # how often the async driver looks again at a thread it waits for


def _named(err: CacheError, tier: Tier, args: tuple[Any, ...]) -> CacheError:
    """``err`` with the tier's name, and the key when the operation had one."""
    if err.tier is None:
        err.tier = tier.name
    if err.key is None and args and type(args[0]) is str:
        err.key = args[0]
    return err


class Drivers:
    tiers: list[Tier]
    _stats: list[TierStats]

    def _call(self, i: int, method: str, args: tuple[Any, ...]) -> Any:
        if i < 0:  # a cache-local step
            return getattr(self, "_" + method)(*args)
        stats = self._stats[i]
        stats.ops += 1
        timed = not stats.ops & 15
        t0 = time.perf_counter_ns() if timed else 0
        try:
            result = getattr(self.tiers[i], method)(*args)
        except CacheError as err:
            return self._recover(i, method, args, err)
        if timed:
            stats.latencies.append(time.perf_counter_ns() - t0)
        return result

    async def _acall(self, i: int, method: str, args: tuple[Any, ...]) -> Any:
        if i < 0:
            twin = getattr(self, "_a" + method, None)
            if twin is None:  # no I/O in it: the sync step serves both
                return getattr(self, "_" + method)(*args)
            return await twin(*args)
        t0 = self._sample(i)  # the sync driver has this inline: its path is the hot one
        try:
            result = await getattr(self.tiers[i], "a" + method)(*args)
        except CorruptEntry as err:
            for k in err.keys:
                await self._adiscard(i, k)
            return self._corrupt(i, err)
        except CacheError as err:
            return self._failed(i, method, _named(err, self.tiers[i], args))
        if t0:
            self._stats[i].latencies.append(time.perf_counter_ns() - t0)
        return result

    def _sample(self, i: int) -> int:
        """Count an operation of tier ``i``; the start time of every 16th (else 0)."""
        stats = self._stats[i]
        stats.ops += 1
        return 0 if stats.ops & 15 else time.perf_counter_ns()

    def _run(self, plan: TierPlan) -> Any:
        try:
            method, i, args = next(plan)
            while True:
                method, i, args = plan.send(self._call(i, method, args))
        except StopIteration as stop:
            return stop.value

    async def _arun(self, plan: TierPlan) -> Any:
        try:
            method, i, args = next(plan)
            while True:
                result = await self._acall(i, method, args)
                method, i, args = plan.send(result)
        except StopIteration as stop:
            return stop.value

    # --- what a plan receives when a tier fails ----------------------------------------------
    def _recover(self, i: int, method: str, args: tuple[Any, ...], err: CacheError) -> Any:
        """What the sync driver returns when tier ``i``'s ``method`` raised ``err``."""
        if isinstance(err, CorruptEntry):
            for k in err.keys:
                self._discard(i, k)
            return self._corrupt(i, err)
        return self._failed(i, method, _named(err, self.tiers[i], args))

    def _failed(self, i: int, method: str, err: CacheError) -> Any:
        """An unavailable tier is skipped (a miss for a read, False for a write); a refused
        payload (tampered, foreign) on a read is a miss, logged; anything else is raised."""
        if isinstance(err, TierUnavailable):
            self._stats[i].errors += 1
            return None if method in _READS else False
        if method not in _READS:
            raise err
        self._stats[i].errors += 1
        log.warning("cache tier %s: %s; treating it as a miss", self.tiers[i].name, err)
        return None

    def _corrupt(self, i: int, err: CorruptEntry) -> Any:
        """Unreadable entries (already deleted from tier ``i``): each an error and a miss; a
        batch read goes on with the entries that did decode."""
        self._stats[i].errors += len(err.keys)
        log.warning("cache tier %s: %s", self.tiers[i].name, err)
        return err.found or None

    def _discard(self, i: int, k: str) -> None:
        try:
            self.tiers[i].delete(k)
        except CacheError as err:  # unavailable now: the entry stays unreadable, a miss again
            self._undeletable(i, k, err)

    async def _adiscard(self, i: int, k: str) -> None:
        try:
            await self.tiers[i].adelete(k)
        except CacheError as err:
            self._undeletable(i, k, err)

    def _undeletable(self, i: int, k: str, err: CacheError) -> None:
        log.warning("cache tier %s: could not delete unreadable %r: %s", self.tiers[i].name, k, err)

    # --- cache-local steps -------------------------------------------------------------------
    def _invoke(self, fn: Any, args: tuple[Any, ...]) -> Any:
        return fn(*args)

    async def _ainvoke(self, fn: Any, args: tuple[Any, ...]) -> Any:
        result = fn(*args)
        return await result if inspect.isawaitable(result) else result

    def _size(self, i: int) -> tuple[int | None, int | None]:
        try:
            return self.tiers[i].size()
        except TierUnavailable:
            return None, None

    async def _asize(self, i: int) -> tuple[int | None, int | None]:
        try:
            return await self.tiers[i].asize()
        except TierUnavailable:
            return None, None

    def _wait(self, target: Any, seconds: float) -> None:
        """Wait at most ``seconds`` for a thread to end, a queue to drain or a future."""
        if isinstance(target, threading.Thread):
            target.join(seconds)
        elif isinstance(target, queue.Queue):
            with target.all_tasks_done:
                if target.unfinished_tasks:
                    target.all_tasks_done.wait(seconds)
        else:
            concurrent.futures.wait([target], seconds)

    async def _await(self, target: Any, seconds: float) -> None:
        """``_wait`` without blocking the event loop: look again after a short sleep."""
        await asyncio.sleep(min(seconds, _POLL))
