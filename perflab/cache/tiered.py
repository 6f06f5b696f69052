"""The tiered cache: L1 → L2 → L3 → loader, sync and async over one core.

``TieredCache`` is assembled from one part per concern: :mod:`~perflab.cache.plans` (every
operation as a plan free of I/O) run by :mod:`~perflab.cache.drivers` (sync and async),
:mod:`~perflab.cache.convergence` (L1 and its stripes: a collaborator object,
:class:`~perflab.cache.convergence.L1Stripes`), :mod:`~perflab.cache.loading` (single-flight,
refresh-ahead, ``cached``), :mod:`~perflab.cache.writeback` (a collaborator too,
:class:`~perflab.cache.writeback.WriteBackQueue`) and :mod:`~perflab.cache.coherence`.
Here: construction, the public methods (each sync method and its async twin run one plan) and
the lifecycle. The L1 hit path of ``get``/``aget`` skips plans: one lookup and one clock read.
"""

from __future__ import annotations

import atexit
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from perflab.cache.coherence import Coherence, Coherent
from perflab.cache.convergence import L1Stripes
from perflab.cache.drivers import Drivers, TierPlan
from perflab.cache.entry import Entry
from perflab.cache.keys import MAX_KEY_LENGTH
from perflab.cache.loading import Loader
from perflab.cache.memory import MemoryTier
from perflab.cache.plans import Plans
from perflab.cache.stats import TierStats
from perflab.cache.tier import Tier, lock_tier
from perflab.cache.writeback import WriteBackQueue, check_timeouts
from perflab.errors import CacheError

__all__ = ["TieredCache"]


class TieredCache(Coherent, Plans, Drivers):
    """Tiers from fastest to slowest (``MemoryTier``, ``RedisTier``, ``DatabaseTier`` or URLs).

    ``write="through"``: every tier is written before ``set`` returns. ``write="back"``: L1 at
    once, the others from a bounded queue by a background thread; ``close()`` and interpreter
    exit flush it. ``refresh_ahead=0.8``: a ``get_or_load`` hit after 80 % of the TTL returns the
    value and reloads it once in the background. ``timer`` (seconds) decides expiry everywhere;
    tests pass a fake one (a tier built with a timer of its own keeps it). Every public method
    has an async twin (``aget``, ``aset``, …, ``aclose``) running the same plan.
    """

    def __init__(
        self,
        tiers: Iterable[Tier | str],
        *,
        default_ttl: float | None = 300,
        write: str = "through",
        refresh_ahead: float | None = None,
        timer: Callable[[], float] = time.time,
        key_func: Callable[[Any], str] | None = None,
        write_queue: int = 10_000,
        write_block: float = 0.1,
        close_timeout: float = 5.0,
        coherence: bool = True,
    ) -> None:
        from perflab.cache.urls import tier_from_url

        self.tiers: list[Tier] = [tier_from_url(t) if isinstance(t, str) else t for t in tiers]
        if not self.tiers:
            raise CacheError("a TieredCache needs at least one tier")
        if write not in ("through", "back"):
            raise CacheError(f"write must be 'through' or 'back', got {write!r}")
        if refresh_ahead is not None and not 0 < refresh_ahead < 1:
            raise CacheError(f"refresh_ahead must be between 0 and 1, got {refresh_ahead!r}")
        if default_ttl is not None and not default_ttl > 0:
            raise CacheError(f"default_ttl must be positive or None, got {default_ttl!r}")
        self.default_ttl, self.write, self.refresh_ahead = default_ttl, write, refresh_ahead
        self.timer, self.key_func = timer, key_func
        for tier in self.tiers:
            if getattr(tier, "timer", None) is None:
                tier.timer = timer
        self._stats = [TierStats() for _ in self.tiers]
        self._l1 = self.tiers[0] if isinstance(self.tiers[0], MemoryTier) else None
        self._l1_store = self._l1._store if self._l1 is not None else None
        self._l1_hit_box = [0]  # L1 hits, counted on the hot path
        if self._l1_store is not None and key_func is None:
            self.get = self._fast_get(self._l1_store)  # type: ignore[method-assign]
        # read-through loading (single-flight, refresh-ahead), a part of its own
        self._loader = Loader(self, self._key, self._lookup, self._l1_store)
        # L1 and its stripes, a part of its own: its methods are the plans' L1 steps
        stripes = self._stripes = L1Stripes(self._l1, self._stats[0], self._call)
        self._stamp, self._bump_all = stripes.stamp, stripes.bump_all
        self._fill, self._fill_many = stripes.fill, stripes.fill_many
        self._settle, self._stage_l1 = stripes.settle, stripes.stage
        self._peek_l1, self._drop_l1 = stripes.peek, stripes.drop
        self._closed = False
        check_timeouts(write_block, close_timeout)
        self.write_block, self.close_timeout = write_block, close_timeout
        # write-back, a part of its own: the queue, its writer thread and their counters
        self._writeback: WriteBackQueue | None = None
        if write == "back" and len(self.tiers) > 1:
            limits = (write_queue, write_block, close_timeout)
            wb = self._writeback = WriteBackQueue(self.tiers, self._stats, self._publish, limits)
            self._enqueue = wb.enqueue  # the plans' "enqueue" step
        self._origin = uuid.uuid4().hex
        self._coherence = None
        if coherence and self._l1 is not None:
            self._coherence = Coherence.start(self, self.tiers, self._origin)
        atexit.register(_close_at_exit, weakref.ref(self))

    # ------------------------------------------------------------------------------------------
    # reading: the L1 hit path is direct, the rest a plan

    def _lookup(self, k: str) -> Entry | None:
        """The fresh entry for ``k`` from any tier, or None."""
        store = self._l1_store
        if store is None:
            # no L1: the first tier read directly (the driver's and the plan's work without
            # their calls), the plan only after a miss there, from the next tier on
            stats = self._stats[0]
            stats.ops += 1
            if stats.ops & 15:
                try:
                    entry = self.tiers[0].get(k)
                except CacheError as err:
                    entry = self._recover(0, "get", (k,), err)
            else:  # every 16th: the driver, which samples the latency
                stats.ops -= 1
                entry = self._call(0, "get", (k,))
            if entry is not None and (entry.expires_at is None or entry.expires_at > self.timer()):
                stats.hits += 1
                return entry
            stats.misses += 1
            return self._run(self._read_plan(k, 1)) if len(self.tiers) > 1 else None
        held: Entry | None = store.get(k)
        if held is not None and (held.expires_at is None or held.expires_at > self.timer()):
            self._l1_hit_box[0] += 1
            return held
        read: Entry | None = self._run(self._read_plan(k, self._first(held)))
        return read

    def get(self, key: Any, default: Any = None) -> Any:
        """The value, from the fastest tier that has it fresh (back-filling the faster ones
        with the remaining TTL), or ``default``."""
        if type(key) is not str or len(key) > MAX_KEY_LENGTH or self.key_func is not None:
            key = self._key(key)  # plain short strings are already normalised
        entry = self._lookup(key)
        return default if entry is None else entry.value

    def _fast_get(self, store: Any) -> Callable[..., Any]:
        """``get`` for a cache with an L1 and plain string keys, as a closure over locals: the
        hit path is one cachebox lookup, one clock read and a counter (~160 ns here)."""
        store_get, timer, hits, lookup = (
            store.get,
            self.timer,
            self._l1_hit_box,
            self._lookup,
        )

        def get(key: Any, default: Any = None) -> Any:
            # Any key may be looked up as it is: L1 holds only normalised string keys, so a
            # long or non-string key simply misses here and is normalised (or refused) below.
            try:
                entry = store_get(key)
            except TypeError:  # unhashable
                entry = None
            if entry is not None:
                expires = entry.expires_at
                if expires is None or expires > timer():
                    hits[0] += 1
                    return entry.value
            entry = lookup(self._key(key))
            return default if entry is None else entry.value

        get.__doc__ = TieredCache.get.__doc__
        return get

    async def aget(self, key: Any, default: Any = None) -> Any:
        k = self._key(key)
        store = self._l1_store
        if store is not None:
            entry = store.get(k)
            if entry is not None and (entry.expires_at is None or entry.expires_at > self.timer()):
                self._l1_hit_box[0] += 1
                return entry.value
            entry = await self._arun(self._read_plan(k, self._first(entry)))
        else:
            entry = await self._arun(self._read_plan(k, 0))
        return default if entry is None else entry.value

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """``{key: value}`` for the keys found (one round trip per tier: MGET, IN (...))."""
        typed: dict[Any, Any] = self._run(self._get_many_op(self._mapped(keys)))
        return typed

    async def aget_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        typed: dict[Any, Any] = await self._arun(self._get_many_op(self._mapped(keys)))
        return typed

    # ------------------------------------------------------------------------------------------
    # writing and invalidating

    def _setting(self, key: Any, value: Any, ttl: float | None, tags: Iterable[str]) -> TierPlan:
        k = self._key(key)
        return self._set_op(k, self._entry(value, ttl, k), tuple(tags))

    def set(self, key: Any, value: Any, ttl: float | None = None, tags: Iterable[str] = ()) -> None:
        """Store ``value`` for ``ttl`` seconds (default ``default_ttl``) in every tier (write-back:
        L1 now, the others from the queue). ``tags`` let ``invalidate_tags`` find it later."""
        self._run(self._setting(key, value, ttl, tags))

    async def aset(
        self, key: Any, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        await self._arun(self._setting(key, value, ttl, tags))

    def set_many(self, mapping: Mapping[Any, Any], ttl: float | None = None) -> None:
        """Store many values: one pipeline to Redis, one upsert to the database."""
        self._run(self._set_many_op(mapping, ttl))

    async def aset_many(self, mapping: Mapping[Any, Any], ttl: float | None = None) -> None:
        await self._arun(self._set_many_op(mapping, ttl))

    def delete(self, key: Any) -> bool:
        """Remove ``key`` from every tier (and from other processes' L1). True if any had it."""
        typed: bool = self._run(self._delete_op(self._key(key)))
        return typed

    async def adelete(self, key: Any) -> bool:
        typed: bool = await self._arun(self._delete_op(self._key(key)))
        return typed

    def invalidate(self, pattern: str = "*") -> int:
        """Delete keys matching a glob (``signals:*``) in every tier and every process's L1."""
        typed: int = self._run(self._invalidate_op(pattern))
        return typed

    async def ainvalidate(self, pattern: str = "*") -> int:
        typed: int = await self._arun(self._invalidate_op(pattern))
        return typed

    def invalidate_tags(self, *tags: str) -> int:
        """Delete every key set with any of ``tags``, everywhere (including copies that reached
        an L1 by back-fill, which carry no tags of their own). Returns how many keys."""
        typed: int = self._run(self._invalidate_tags_op(tags))
        return typed

    async def ainvalidate_tags(self, *tags: str) -> int:
        typed: int = await self._arun(self._invalidate_tags_op(tags))
        return typed

    def clear(self) -> None:
        """Empty every tier, and every process's L1."""
        self._run(self._clear_op())

    async def aclear(self) -> None:
        await self._arun(self._clear_op())

    def warm(
        self,
        items: Mapping[Any, Any] | Iterable[Any],
        loader: Callable[[list[Any]], Mapping[Any, Any]] | None = None,
        ttl: float | None = None,
    ) -> int:
        """Fill the cache in one batch: a mapping is stored as is; keys with a ``loader`` are
        loaded for those not already cached (``loader(missing_keys) -> {key: value}``).
        Returns how many values were stored."""
        typed: int = self._run(self._warm_op(items, loader, ttl))
        return typed

    async def awarm(
        self,
        items: Mapping[Any, Any] | Iterable[Any],
        loader: Callable[[list[Any]], Any] | None = None,
        ttl: float | None = None,
    ) -> int:
        """``warm``; ``loader`` may be a coroutine function."""
        typed: int = await self._arun(self._warm_op(items, loader, ttl))
        return typed

    # ------------------------------------------------------------------------------------------
    # read-through: the loader's work

    def get_or_load(
        self, key: Any, loader: Callable[[], Any], ttl: float | None = None, *, lock: bool = False
    ) -> Any:
        """The cached value, or ``loader()``'s, stored. Concurrent misses on one key call the
        loader once in this process (``lock=True``: once across processes, via a Redis lock).
        A loader that raises propagates to every waiter and caches nothing. With
        ``refresh_ahead``, a hit late in its TTL also reloads the key once in the background."""
        return self._loader.get_or_load(key, loader, ttl, lock)

    async def aget_or_load(
        self,
        key: Any,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None = None,
        *,
        lock: bool = False,
    ) -> Any:
        """``get_or_load`` for coroutine loaders: concurrent tasks share one load."""
        return await self._loader.aget_or_load(key, loader, ttl, lock)

    def cached(
        self, ttl: float | None = None, *, key: Callable[..., str] | None = None
    ) -> Callable[..., Any]:
        """Decorator: cache a function's results (sync or async) by its arguments (or ``key``)."""
        return self._loader.cached(ttl, key=key)

    # ------------------------------------------------------------------------------------------
    # locks: the first tier that supports them

    def lock(self, name: str, timeout: float = 10, blocking_timeout: float | None = None) -> Any:
        """A distributed lock (redis-py's Lock) held for at most ``timeout`` seconds:
        ``with cache.lock("rebuild"): ...``"""
        tier = lock_tier(self.tiers)
        return tier.lock(name, timeout=timeout, blocking_timeout=blocking_timeout)

    def alock(self, name: str, timeout: float = 10, blocking_timeout: float | None = None) -> Any:
        """The same lock for tasks: ``async with cache.alock("rebuild"): ...`` (an async
        context manager, so not a coroutine function itself)."""
        tier = lock_tier(self.tiers)
        return tier.alock(name, timeout=timeout, blocking_timeout=blocking_timeout)

    # ------------------------------------------------------------------------------------------
    # metrics and lifecycle

    def stats(self) -> pd.DataFrame:
        """One row per tier: hits, misses, sets, deletes, evictions, errors, hit ratio, sampled
        latency p50/p99 (µs), items and bytes where known."""
        return self._run(self._stats_op())

    async def astats(self) -> pd.DataFrame:
        return await self._arun(self._stats_op())

    @property
    def write_back_failures(self) -> int:
        """Queued write-backs abandoned at ``close()`` (its deadline passed)."""
        return 0 if self._writeback is None else self._writeback.failures

    @property
    def write_back_dropped(self) -> int:
        """Write-backs never queued because the queue stayed full."""
        return 0 if self._writeback is None else self._writeback.dropped

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued write-back has reached the lower tiers, at most ``timeout``
        seconds (default ``close_timeout``). True if the queue drained."""
        typed: bool = self._run(self._flush_plan(timeout))
        return typed

    async def aflush(self, timeout: float | None = None) -> bool:
        typed: bool = await self._arun(self._flush_plan(timeout))
        return typed

    def _close_plan(self) -> TierPlan:
        if self._closed:
            return
        if self._writeback is not None:
            yield from self._writeback.stop_plan()
        self._closed = True
        if self._coherence is not None:
            self._coherence.signal_stop()
            thread, until = self._coherence.thread, time.monotonic() + 2.0
            while thread.is_alive() and time.monotonic() < until:
                yield ("wait", -1, (thread, max(0.0, until - time.monotonic())))
            self._coherence.finish()
        yield from self._loader.stop_plan()
        for tier in self.tiers:
            tier.close()

    def close(self) -> None:
        """Flush write-back (for at most ``close_timeout`` seconds: with a lower tier down,
        what is still queued then is lost, counted in ``write_back_failures`` and logged once),
        stop background work, close the tiers. Idempotent."""
        self._run(self._close_plan())

    async def aclose(self) -> None:
        await self._arun(self._close_plan())

    def __enter__(self) -> TieredCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> TieredCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<TieredCache {' → '.join(t.name for t in self.tiers)} write={self.write}>"


def _close_at_exit(ref: weakref.ref[Any]) -> None:
    cache = ref()
    if cache is not None:
        cache.close()
