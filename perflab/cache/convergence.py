"""L1 convergence: L1 holds what the lower tiers hold, or nothing.

Every L1 update happens under its stripe's lock (``hash(key) & (STRIPES - 1)``) and bumps the
stripe's stamp. A read notes the stamp before it reads any tier; its back-fill of L1 is dropped
if the stamp moved meanwhile (a write came between). A write settles L1 after the lower tiers
took it: its entry if no other write of the stripe completed meanwhile, else nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from perflab.cache.entry import Entry
from perflab.cache.memory import MemoryTier
from perflab.cache.stats import TierStats

__all__ = ["STRIPES", "L1Convergence"]

STRIPES = 256


class L1Convergence:
    """Mixin of TieredCache; ``_call`` is the sync driver's (L1 calls never do I/O)."""

    _l1: MemoryTier | None
    _stats: list[TierStats]
    _call: Callable[[int, str, tuple[Any, ...]], Any]

    def _init_stripes(self) -> None:
        self._locks = [threading.Lock() for _ in range(STRIPES)]
        self._stamps = [0] * STRIPES

    def _stamp(self, k: str) -> int:
        return self._stamps[hash(k) & (STRIPES - 1)]

    def _fill(self, k: str, entry: Entry, seen: int) -> None:
        """Back-fill L1 with what a read found below, unless a write to (or an invalidation of)
        the key's stripe completed since the read began: then the value may be older."""
        s = hash(k) & (STRIPES - 1)
        with self._locks[s]:
            if self._stamps[s] == seen:
                self._call(0, "set", (k, entry, (), None))

    def _fill_many(self, entries: dict[str, Entry], seen: dict[str, int]) -> None:
        for k, entry in entries.items():
            self._fill(k, entry, seen[k])

    def _settle(self, k: str, entry: Entry | None, tags: tuple[Any, ...], seen: int) -> None:
        """The L1 step of a write, after the lower tiers took it: store ``entry`` if no other
        write of the stripe completed meanwhile (the lower tiers then hold ours), else drop the
        key (which write the lower tiers kept is unknown); ``entry=None`` (a delete) drops it."""
        s = hash(k) & (STRIPES - 1)
        with self._locks[s]:
            try:
                if entry is not None and self._stamps[s] == seen:
                    self._call(0, "set", (k, entry, tags, None))
                    self._stats[0].sets += 1
                elif self._l1 is not None:  # (only called with L1; the check narrows the type)
                    self._l1.delete(k)
            finally:
                self._stamps[s] += 1

    def _stage_l1(self, k: str, entry: Entry | None, tags: tuple[Any, ...], offer: Any) -> bool:
        """Write-back's L1 step: ``offer()`` the write to the queue and, if it was taken (True),
        update L1 under the same stripe lock, so the lower tiers receive a key's writes in L1's
        order. Returns what ``offer()`` returned (False: nothing changed, try again later)."""
        s = hash(k) & (STRIPES - 1)
        with self._locks[s]:
            if not offer():
                return False
            try:
                if entry is None:
                    if self._l1 is not None:  # (only called with L1)
                        self._l1.delete(k)
                    self._stats[0].deletes += 1
                else:
                    self._call(0, "set", (k, entry, tags, None))
                    self._stats[0].sets += 1
            finally:
                self._stamps[s] += 1
            return True

    def _bump_all(self) -> None:
        """After a pattern, tag or whole-L1 drop: every back-fill in flight is suspect."""
        for s in range(STRIPES):
            with self._locks[s]:
                self._stamps[s] += 1

    def _peek_l1(self, k: str) -> Entry | None:
        """A plan's ``peek_l1`` step: what L1 holds for ``k``, fresh or not."""
        return None if self._l1 is None else self._l1.get(k)

    def _drop_l1(self, k: str) -> None:
        """A plan's ``drop_l1`` step: forget ``k`` in L1."""
        if self._l1 is not None:
            self._l1.delete(k)
