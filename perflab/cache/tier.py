"""The one contract every tier keeps, and the outage guard the shared tiers share.

A tier stores :class:`Entry` objects under string keys; it never decides expiry (the tiered
cache does, with its timer). Sync methods are the contract; async ones default to running the
sync method in a thread, and tiers with a native async client override them.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Iterable
from typing import Any

from perflab.cache.entry import Entry
from perflab.errors import CacheError

__all__ = ["Tier", "TierUnavailable"]

log = logging.getLogger("perflab.cache")


class TierUnavailable(CacheError):
    """The tier's server is down or too slow; the cache falls through to the other tiers."""


class Tier:
    """Base class and contract. ``name`` labels the tier in stats; ``shared`` tiers are seen by
    other processes (and so carry serialised values and cross-process invalidation)."""

    name = "tier"
    shared = False

    # --- the contract ------------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        raise NotImplementedError

    def prepare(self, key: str, entry: Entry) -> Any:
        """What ``set`` will store (the serialised form, for shared tiers). Called for every tier
        before any is written, so a value that can't be stored fails before anything changes."""
        return None

    def set(self, key: str, entry: Entry, tags: Iterable[str] = (), data: Any = None) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> bool:
        raise NotImplementedError

    def get_many(self, keys: list[str]) -> dict[str, Entry]:
        found = {}
        for key in keys:
            entry = self.get(key)
            if entry is not None:
                found[key] = entry
        return found

    def set_many(self, entries: dict[str, Entry]) -> None:
        for key, entry in entries.items():
            self.set(key, entry)

    def clear(self) -> None:
        raise NotImplementedError

    def delete_pattern(self, pattern: str) -> int:
        """Delete keys matching a glob (``signals:*``); returns how many."""
        raise NotImplementedError

    def delete_tags(self, tags: Iterable[str]) -> list[str]:
        """Delete every key set with any of ``tags``; returns those keys."""
        raise NotImplementedError

    def size(self) -> tuple[int | None, int | None]:
        """(items, bytes) where known."""
        return None, None

    def close(self) -> None:
        return None

    # --- async: a thread by default ------------------------------------------------------------
    async def aget(self, key: str) -> Entry | None:
        return await asyncio.to_thread(self.get, key)

    async def aset(
        self, key: str, entry: Entry, tags: Iterable[str] = (), data: Any = None
    ) -> None:
        await asyncio.to_thread(self.set, key, entry, tuple(tags), data)

    async def adelete(self, key: str) -> bool:
        return await asyncio.to_thread(self.delete, key)

    async def aget_many(self, keys: list[str]) -> dict[str, Entry]:
        return await asyncio.to_thread(self.get_many, keys)

    async def aset_many(self, entries: dict[str, Entry]) -> None:
        await asyncio.to_thread(self.set_many, entries)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def matches(key: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(key, pattern)


class Breaker:
    """After a failure, skip the tier for a growing pause (0.5 s doubling to 30 s) so an outage
    costs one timeout, not one per operation; log the outage once and the recovery once."""

    def __init__(self, label: str, timer=time.monotonic) -> None:
        self.label = label
        self.timer = timer
        self.down_until = 0.0
        self.pause = 0.0
        self.failures = 0

    def allow(self) -> bool:
        return self.timer() >= self.down_until

    def failed(self, err: BaseException) -> TierUnavailable:
        if self.failures == 0:
            log.warning(
                "cache tier %s unavailable (%s); falling through until it recovers", self.label, err
            )
        self.failures += 1
        self.pause = min(30.0, max(0.5, self.pause * 2))
        self.down_until = self.timer() + self.pause
        return TierUnavailable(f"cache tier {self.label} unavailable: {err}")

    def succeeded(self) -> None:
        if self.failures:
            log.warning(
                "cache tier %s recovered after %d failed attempts", self.label, self.failures
            )
        self.failures, self.pause, self.down_until = 0, 0.0, 0.0

    def skipped(self) -> TierUnavailable:
        return TierUnavailable(f"cache tier {self.label} unavailable (backing off)")


def guarded(method: Any) -> Any:
    """Decorator for shared-tier methods: refuse while backing off; turn a connection error
    (the tier's ``_errors``) into TierUnavailable and start backing off."""

    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        if not self._breaker.allow():
            raise self._breaker.skipped()
        try:
            result = method(self, *args, **kwargs)
        except self._errors as err:
            raise self._breaker.failed(err) from err
        self._breaker.succeeded()
        return result

    async def awrapper(self, *args: Any, **kwargs: Any) -> Any:
        if not self._breaker.allow():
            raise self._breaker.skipped()
        try:
            result = await method(self, *args, **kwargs)
        except self._errors as err:
            raise self._breaker.failed(err) from err
        self._breaker.succeeded()
        return result

    chosen = awrapper if asyncio.iscoroutinefunction(method) else wrapper
    chosen.__name__, chosen.__doc__ = method.__name__, method.__doc__
    return chosen
