"""L1: in-process memory. ``lru``, ``lfu`` and ``fifo`` on cachebox (Rust, internally locked,
~50 ns hits); ``tinylfu`` (W-TinyLFU, resistant to scans and one-hit wonders) on theine.
Values are kept as they are (no copy): mutate a cached object and the cache sees it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

from perflab.cache.entry import Entry
from perflab.cache.tier import Tier, matches
from perflab.errors import CacheError

__all__ = ["POLICIES", "MemoryTier"]

POLICIES = ("lru", "lfu", "fifo", "tinylfu")


def _sizeof(key: str, entry: Entry) -> int:
    return sys.getsizeof(key) + sys.getsizeof(entry.value)


class _Theine:
    """theine's W-TinyLFU behind the mapping calls MemoryTier uses."""

    def __init__(self, maxsize: int) -> None:
        import theine

        self._cache: Any = theine.Cache(maxsize)
        self._keys: set[str] = set()  # theine does not list keys; patterns and len need them
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        value, found = self._cache.get(key)
        return value if found else default

    def __setitem__(self, key: str, value: Any) -> None:
        self._cache.set(key, value)
        with self._lock:
            self._keys.add(key)

    def pop(self, key: str, default: Any = None) -> Any:
        value, found = self._cache.get(key)
        self._cache.delete(key)
        with self._lock:
            self._keys.discard(key)
        return value if found else default

    def keys(self) -> list[str]:
        with self._lock:
            live = [k for k in self._keys if self._cache.get(k)[1]]
            self._keys = set(live)  # forget keys theine evicted
        return live

    def __contains__(self, key: str) -> bool:
        held: bool = self._cache.get(key)[1]
        return held

    def __len__(self) -> int:
        return len(self.keys())

    def clear(self) -> None:
        self._cache.clear()
        with self._lock:
            self._keys.clear()


class MemoryTier(Tier):
    """L1. ``max_items`` bounds the count; ``max_bytes`` (optional, lru/lfu/fifo) bounds the
    approximate size (``sys.getsizeof`` of key and value)."""

    shared = False

    def __init__(
        self, max_items: int = 10_000, policy: str = "lru", max_bytes: int | None = None
    ) -> None:
        if policy not in POLICIES:
            raise CacheError(f"unknown L1 policy {policy!r}; use one of {', '.join(POLICIES)}")
        if not isinstance(max_items, int) or max_items < 1:
            raise CacheError(f"max_items must be a positive integer, got {max_items!r}")
        if max_bytes is not None and policy == "tinylfu":
            raise CacheError("max_bytes is not available with policy 'tinylfu'")
        self.policy, self.max_items, self.max_bytes = policy, max_items, max_bytes
        self.name = f"memory/{policy}"
        self.evictions: int | None = None if policy == "tinylfu" else 0  # theine doesn't tell
        self._tags: dict[str, set[str]] = {}
        self._tag_lock = threading.Lock()
        self._store = self._make()

    def _make(self) -> Any:
        if self.policy == "tinylfu":
            return _Theine(self.max_items)
        import cachebox

        cls = {"lru": cachebox.LRUCache, "lfu": cachebox.LFUCache, "fifo": cachebox.FIFOCache}[
            self.policy
        ]
        if self.max_bytes is None:
            return cls(self.max_items)
        return cls(self.max_bytes, getsizeof=_sizeof)

    # the hit path: one lookup, no lock of ours
    def get(self, key: str) -> Entry | None:
        typed: Entry | None = self._store.get(key)
        return typed

    def set(self, key: str, entry: Entry, tags: Iterable[str] = (), data: Any = None) -> None:
        store = self._store
        if self.max_bytes is not None and _sizeof(key, entry) > self.max_bytes:
            raise CacheError(
                f"key {key!r}: value of ~{_sizeof(key, entry)} bytes exceeds max_bytes "
                f"({self.max_bytes}) of {self.name}; raise max_bytes or store less",
                key=key,
                tier=self.name,
            )
        if self.policy == "tinylfu":
            store[key] = entry
        else:
            # cachebox evicts silently: count evictions from the size before and after
            before = len(store) + (key not in store)
            store[key] = entry
            self.evictions += before - len(store)  # type: ignore[operator]
        if tags:
            with self._tag_lock:
                for tag in tags:
                    self._tags.setdefault(tag, set()).add(key)

    def delete(self, key: str) -> bool:
        return self._store.pop(key, None) is not None

    def clear(self) -> None:
        self._store.clear()
        with self._tag_lock:
            self._tags.clear()

    def delete_pattern(self, pattern: str) -> int:
        return sum(self.delete(k) for k in list(self._store.keys()) if matches(k, pattern))

    def delete_tags(self, tags: Iterable[str]) -> list[str]:
        with self._tag_lock:
            keys = set().union(*(self._tags.pop(t, set()) for t in tags))
        return [k for k in keys if self.delete(k)]

    def size(self) -> tuple[int | None, int | None]:
        items = len(self._store)
        if self.max_bytes is not None:
            return items, int(self._store.current_size())
        return items, None

    async def aget(self, key: str) -> Entry | None:
        typed: Entry | None = self._store.get(key)
        return typed

    async def aset(
        self, key: str, entry: Entry, tags: Iterable[str] = (), data: Any = None
    ) -> None:
        self.set(key, entry, tags)

    async def adelete(self, key: str) -> bool:
        return self.delete(key)

    async def aget_many(self, keys: list[str]) -> dict[str, Entry]:
        return self.get_many(keys)

    async def aset_many(self, entries: dict[str, Entry]) -> None:
        self.set_many(entries)

    async def aclear(self) -> None:
        self.clear()

    async def adelete_pattern(self, pattern: str) -> int:
        return self.delete_pattern(pattern)

    async def adelete_tags(self, tags: Iterable[str]) -> list[str]:
        return self.delete_tags(tags)

    async def asize(self) -> tuple[int | None, int | None]:
        return self.size()
