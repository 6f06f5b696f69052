"""L1 convergence: L1 holds what the lower tiers hold, or nothing.

Every L1 update happens under its stripe's lock (``hash(key) & (STRIPES - 1)``) and bumps the
stripe's stamp. A read notes the stamp before it reads any tier; its back-fill of L1 is dropped
if the stamp moved meanwhile (a write came between). A write settles L1 after the lower tiers
took it: its entry if no other write of the stripe completed meanwhile, else nothing.

:class:`L1Stripes` is a part of TieredCache of its own (composition): the cache holds one and
hands its methods to the plans' driver steps (``fill``, ``settle``, ``peek_l1``, ``drop_l1``,
``bump_all``) and to write-back and coherence.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from perflab.cache.entry import Entry
from perflab.cache.memory import MemoryTier
from perflab.cache.stats import TierStats

__all__ = ["STRIPES", "L1Stripes"]

STRIPES = 256


class L1Stripes:
    """L1 (``None`` for a cache without one), its 256 stripe locks and stamps. ``stats`` are
    L1's counters; ``call`` is the cache's sync driver call, so L1 writes are sampled like any
    tier's (L1 calls never do I/O)."""

    def __init__(
        self,
        l1: MemoryTier | None,
        stats: TierStats,
        call: Callable[[int, str, tuple[Any, ...]], Any],
    ) -> None:
        self.l1, self.stats, self._call = l1, stats, call
        self._locks = [threading.Lock() for _ in range(STRIPES)]
        self._stamps = [0] * STRIPES

    def stamp(self, k: str) -> int:
        return self._stamps[hash(k) & (STRIPES - 1)]

    def fill(self, k: str, entry: Entry, seen: int) -> None:
        """Back-fill L1 with what a read found below, unless a write to (or an invalidation of)
        the key's stripe completed since the read began: then the value may be older."""
        s = hash(k) & (STRIPES - 1)
        with self._locks[s]:
            if self._stamps[s] == seen:
                self._call(0, "set", (k, entry, (), None))

    def fill_many(self, entries: dict[str, Entry], seen: dict[str, int]) -> None:
        for k, entry in entries.items():
            self.fill(k, entry, seen[k])

    def settle(self, k: str, entry: Entry | None, tags: tuple[Any, ...], seen: int) -> None:
        """The L1 step of a write, after the lower tiers took it: store ``entry`` if no other
        write of the stripe completed meanwhile (the lower tiers then hold ours), else drop the
        key (which write the lower tiers kept is unknown); ``entry=None`` (a delete) drops it."""
        s = hash(k) & (STRIPES - 1)
        with self._locks[s]:
            try:
                if entry is not None and self._stamps[s] == seen:
                    self._call(0, "set", (k, entry, tags, None))
                    self.stats.sets += 1
                elif self.l1 is not None:  # (only called with L1; the check narrows the type)
                    self.l1.delete(k)
            finally:
                self._stamps[s] += 1

    def stage(self, k: str, entry: Entry | None, tags: tuple[Any, ...], offer: Any) -> bool:
        """Write-back's L1 step: ``offer()`` the write to the queue and, if it was taken (True),
        update L1 under the same stripe lock, so the lower tiers receive a key's writes in L1's
        order. Returns what ``offer()`` returned (False: nothing changed, try again later)."""
        s = hash(k) & (STRIPES - 1)
        with self._locks[s]:
            if not offer():
                return False
            try:
                if entry is None:
                    if self.l1 is not None:  # (only called with L1)
                        self.l1.delete(k)
                    self.stats.deletes += 1
                else:
                    self._call(0, "set", (k, entry, tags, None))
                    self.stats.sets += 1
            finally:
                self._stamps[s] += 1
            return True

    def bump_all(self) -> None:
        """After a pattern, tag or whole-L1 drop: every back-fill in flight is suspect."""
        for s in range(STRIPES):
            with self._locks[s]:
                self._stamps[s] += 1

    def peek(self, k: str) -> Entry | None:
        """A plan's ``peek_l1`` step: what L1 holds for ``k``, fresh or not."""
        return None if self.l1 is None else self.l1.get(k)

    def drop(self, k: str) -> None:
        """A plan's ``drop_l1`` step: forget ``k`` in L1."""
        if self.l1 is not None:
            self.l1.delete(k)
