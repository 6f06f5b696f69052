"""The one contract every tier keeps, and the capabilities a tier may declare.

A tier stores :class:`Entry` objects under string keys; it never decides expiry (the tiered
cache does, with its timer). Sync methods are the contract; async ones default to running the
sync method in a thread, and tiers with a native async client override them.

Capabilities: a tier with ``supports_locks`` gives distributed locks (``lock``/``alock``); one
with ``supports_pubsub`` carries messages between processes (``channel``, ``publish``,
``publish_many``, ``subscribe``). The tiered cache looks for these flags, never for a class.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from perflab.cache.entry import Entry
from perflab.errors import CacheError

__all__ = ["Subscription", "Tier", "TierUnavailable"]


class TierUnavailable(CacheError):
    """The tier's server is down or too slow; the cache falls through to the other tiers."""


class Tier:
    """Base class and contract. ``name`` labels the tier in stats; ``shared`` tiers are seen by
    other processes (and so carry serialised values and cross-process invalidation)."""

    name = "tier"
    shared = False
    supports_locks = False
    supports_pubsub = False
    timer: Callable[[], float] | None = None  # None: the tiered cache gives it its own

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

    def available(self) -> bool:
        """False while the tier is known to be down (backing off): don't wait on it."""
        return True

    def retry_in(self) -> float:
        """Seconds until a tier that just failed is worth trying again."""
        return 0.5

    # --- capabilities (see the module docstring) ----------------------------------------------
    def _lacks(self, what: str) -> CacheError:
        return CacheError(
            f"cache tier {self.name} has no {what}; use a tier that has (RedisTier)",
            tier=self.name,
        )

    def lock(self, name: str, *, timeout: float = 10, blocking_timeout: float | None = None) -> Any:
        """A lock held for at most ``timeout`` seconds across processes (a context manager)."""
        raise self._lacks("locks")

    def alock(
        self, name: str, *, timeout: float = 10, blocking_timeout: float | None = None
    ) -> Any:
        """``lock`` as an async context manager."""
        raise self._lacks("locks")

    def channel(self, name: str) -> str:
        """The full name of message channel ``name`` in this tier's namespace."""
        raise self._lacks("pub/sub")

    def publish(self, channel: str, message: str) -> None:
        raise self._lacks("pub/sub")

    def publish_many(self, channel: str, messages: list[str]) -> None:
        for message in messages:
            self.publish(channel, message)

    def subscribe(self, channel: str) -> Subscription:
        """A subscription of its own, confirmed; raises TierUnavailable if it cannot be made."""
        raise self._lacks("pub/sub")

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

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    async def adelete_pattern(self, pattern: str) -> int:
        return await asyncio.to_thread(self.delete_pattern, pattern)

    async def adelete_tags(self, tags: Iterable[str]) -> list[str]:
        return await asyncio.to_thread(self.delete_tags, tuple(tags))

    async def asize(self) -> tuple[int | None, int | None]:
        return await asyncio.to_thread(self.size)

    async def apublish(self, channel: str, message: str) -> None:
        await asyncio.to_thread(self.publish, channel, message)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Subscription(Protocol):
    """What ``Tier.subscribe`` returns. ``receive`` gives the next message as
    ``(type, data)`` (type ``"message"`` carries data; others are control replies) or None after
    ``timeout``; every method raises TierUnavailable when the connection is gone."""

    timeout: float

    def receive(self, timeout: float) -> tuple[str, Any] | None: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


def lock_tier(tiers: list[Tier]) -> Tier:
    """The first of ``tiers`` that gives distributed locks; a CacheError naming them if none."""
    for tier in tiers:
        if tier.supports_locks:
            return tier
    raise CacheError(
        f"a distributed lock needs a tier with locks (RedisTier); this cache has "
        f"{', '.join(t.name for t in tiers)}"
    )


def matches(key: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(key, pattern)
