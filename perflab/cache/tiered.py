"""The tiered cache: L1 → L2 → L3 → loader, sync and async over one core.

Each operation is a *plan*: a generator that yields tier operations ``(method, tier, args)`` and
receives their results, deciding fall-through, expiry and back-fill without doing any I/O. Two
short drivers run plans: :meth:`TieredCache._run` calls the tiers, :meth:`TieredCache._arun`
awaits their async methods (the pattern of httpx's auth flows). The L1 hit path skips plans
entirely: one dictionary lookup and one clock read.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import functools
import inspect
import json
import logging
import queue
import random
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import redis
from redis.exceptions import RedisError

from perflab.cache.entry import CorruptEntry, Entry
from perflab.cache.keys import MAX_KEY_LENGTH, call_key, normalize
from perflab.cache.memory import MemoryTier
from perflab.cache.tier import Tier, TierUnavailable
from perflab.errors import CacheError

__all__ = ["TieredCache"]

log = logging.getLogger("perflab.cache")
MISSING: Any = object()
Plan = Generator[tuple[str, int, tuple], Any, Any]
_READS = {"get", "get_many"}


class _Stats:
    """Counters of one tier; latencies of every 16th operation through a driver."""

    __slots__ = ("deletes", "errors", "hits", "latencies", "misses", "ops", "sets")

    def __init__(self) -> None:
        self.hits = self.misses = self.sets = self.deletes = self.errors = self.ops = 0
        self.latencies: collections.deque[int] = collections.deque(maxlen=2048)


class _Flight:
    """One in-process load of a key that other callers wait for: threads block on ``done``;
    tasks of any event loop (in any thread) await a future of their own loop, woken with
    ``call_soon_threadsafe``. Sync and async callers of one key share one flight."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.get_ident()  # the leader's thread
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._lock = threading.Lock()

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    async def wait(self) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            waiting = not self.done.is_set()
            if waiting:
                self._waiters.append((loop, future))
        if waiting:
            await future  # cancelling this waiter cancels only its own future
        return self.result()

    def finish(self) -> None:
        with self._lock:
            self.done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            if loop.is_closed():  # its tasks are gone with it
                continue
            loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


_STRIPES = 256  # write stamps and locks for L1 updates, by hash(key) & (_STRIPES - 1)


class TieredCache:
    """Tiers from fastest to slowest (``MemoryTier``, ``RedisTier``, ``DatabaseTier`` or URLs).

    ``write="through"``: every tier is written before ``set`` returns. ``write="back"``: L1 at
    once, the others from a bounded queue by a background thread; ``close()`` and interpreter
    exit flush it. ``refresh_ahead=0.8``: a ``get_or_load`` hit after 80 % of the TTL returns the
    value and reloads it once in the background. ``timer`` (seconds) decides expiry everywhere;
    tests pass a fake one.
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
            tier.timer = timer
        self._stats = [_Stats() for _ in self.tiers]
        self._l1 = self.tiers[0] if isinstance(self.tiers[0], MemoryTier) else None
        self._l1_store = self._l1._store if self._l1 is not None else None
        self._l1_hit_box = [0]  # L1 hits, counted on the hot path
        if self._l1_store is not None and key_func is None:
            self.get = self._fast_get()  # type: ignore[method-assign]
        self._flights: dict[str, _Flight] = {}
        self._flight_lock = threading.Lock()
        # L1 convergence: an L1 update happens under its stripe's lock and bumps its stamp; a
        # write or back-fill that saw another stamp than at its start drops the key instead
        self._locks = [threading.Lock() for _ in range(_STRIPES)]
        self._stamps = [0] * _STRIPES
        self._refreshing: set[str] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False
        self._queue: queue.Queue | None = None
        self._writer: threading.Thread | None = None
        if not write_block >= 0 or not close_timeout >= 0:
            raise CacheError(
                f"write_block and close_timeout are seconds >= 0, got {write_block!r}, "
                f"{close_timeout!r}"
            )
        self.write_block, self.close_timeout = write_block, close_timeout
        self.write_back_failures = 0  # queued writes abandoned at close() (deadline passed)
        self.write_back_dropped = 0  # writes not queued because the queue stayed full
        self._stalled = False  # the queue was full for write_block: drop without waiting
        self._stop = threading.Event()
        if write == "back" and len(self.tiers) > 1:
            self._queue = queue.Queue(maxsize=write_queue)
            self._writer = threading.Thread(
                target=self._drain, name="perflab-write-back", daemon=True
            )
            self._writer.start()
        self._origin = uuid.uuid4().hex
        self._coherence = None
        if coherence and self._l1 is not None:
            self._coherence = _Coherence.start(self)
        atexit.register(_close_at_exit, weakref.ref(self))

    # ------------------------------------------------------------------------------------------
    # plans: decisions, no I/O

    def _read_plan(self, key: str, first: int) -> Plan:
        now = self.timer()
        seen = self._stamp(key)  # before any tier is read: a write after this wins over us
        for i in range(first, len(self.tiers)):
            entry = yield ("get", i, (key,))
            if entry is None or entry.expired(now):
                self._stats[i].misses += 1
                if entry is not None and i == 0:
                    yield ("delete", 0, (key,))  # drop the expired L1 copy
                continue
            self._stats[i].hits += 1
            for j in range(i):  # back-fill faster tiers; same expires_at = the remaining TTL
                if j == 0 and self._l1 is not None:  # unless a write to the key came between
                    yield ("fill", 0, (key, entry, seen))
                else:
                    yield ("set", j, (key, entry, (), None))
            return entry
        return None

    def _write_plan(self, key: str, entry: Entry, tags: tuple, tiers: range) -> Plan:
        # serialise for every tier first: a value that can't be stored fails before any write
        data = [self.tiers[i].prepare(key, entry) for i in tiers]
        for i, prepared in zip(reversed(tiers), reversed(data), strict=True):  # slowest first
            done = yield ("set", i, (key, entry, tags, prepared))
            if done is not False:
                self._stats[i].sets += 1

    def _delete_plan(self, key: str, tiers: range) -> Plan:
        found = False
        for i in tiers:
            deleted = yield ("delete", i, (key,))
            found = found or bool(deleted)
            self._stats[i].deletes += 1
        return found

    def _get_many_plan(self, keys: list[str]) -> Plan:
        now = self.timer()
        seen = [self._stamp(k) for k in keys] if self._l1 is not None else None
        found: dict[str, Entry] = {}
        wanted = keys
        for i in range(len(self.tiers)):
            got = (yield ("get_many", i, (wanted,))) or {}
            fresh = {k: e for k, e in got.items() if e.expires_at is None or e.expires_at > now}
            self._stats[i].hits += len(fresh)
            self._stats[i].misses += len(wanted) - len(fresh)
            if fresh and i:
                for j in range(i):
                    if j == 0 and seen is not None:
                        stamps = dict(zip(keys, seen, strict=True))
                        yield ("fill_many", 0, (fresh, stamps))
                    else:
                        yield ("set_many", j, (fresh,))
            if not found and len(fresh) == len(wanted):
                return fresh  # all found in one tier: the common case
            found.update(fresh)
            wanted = [k for k in wanted if k not in fresh]
            if not wanted:
                break
        return found

    # ------------------------------------------------------------------------------------------
    # drivers

    def _call(self, i: int, method: str, args: tuple) -> Any:
        if method[0] == "f":  # fill / fill_many: a conditional L1 back-fill
            return getattr(self, "_" + method)(*args)
        stats = self._stats[i]
        stats.ops += 1
        timed = not stats.ops & 15
        t0 = time.perf_counter_ns() if timed else 0
        try:
            result = getattr(self.tiers[i], method)(*args)
        except CorruptEntry as err:
            for k in err.keys:
                self._discard(i, k)
            return self._corrupt(i, err)
        except CacheError as err:
            return self._failed(i, method, err)
        if timed:
            stats.latencies.append(time.perf_counter_ns() - t0)
        return result

    async def _acall(self, i: int, method: str, args: tuple) -> Any:
        if method[0] == "f":
            return getattr(self, "_" + method)(*args)
        stats = self._stats[i]
        stats.ops += 1
        timed = not stats.ops & 15
        t0 = time.perf_counter_ns() if timed else 0
        try:
            result = await getattr(self.tiers[i], "a" + method)(*args)
        except CorruptEntry as err:
            for k in err.keys:
                await self._adiscard(i, k)
            return self._corrupt(i, err)
        except CacheError as err:
            return self._failed(i, method, err)
        if timed:
            stats.latencies.append(time.perf_counter_ns() - t0)
        return result

    def _failed(self, i: int, method: str, err: CacheError) -> Any:
        """What a plan receives when a tier fails: an unavailable tier is skipped (a miss for a
        read, False for a write); a refused payload (tampered, foreign) on a read is a miss,
        logged; anything else is raised."""
        if isinstance(err, TierUnavailable):
            self._stats[i].errors += 1
            return None if method in _READS else False
        if method not in _READS:
            raise err
        self._stats[i].errors += 1
        log.warning("cache tier %s: %s; treating it as a miss", self.tiers[i].name, err)
        return None

    # ------------------------------------------------------------------------------------------
    # L1 convergence (the rule: L1 holds what the lower tiers hold, or nothing)

    def _stamp(self, k: str) -> int:
        return self._stamps[hash(k) & (_STRIPES - 1)]

    def _fill(self, k: str, entry: Entry, seen: int) -> None:
        """Back-fill L1 with what a read found below, unless a write to (or an invalidation of)
        the key's stripe completed since the read began: then the value may be older."""
        s = hash(k) & (_STRIPES - 1)
        with self._locks[s]:
            if self._stamps[s] == seen:
                self._call(0, "set", (k, entry, (), None))

    def _fill_many(self, entries: dict[str, Entry], seen: dict[str, int]) -> None:
        for k, entry in entries.items():
            self._fill(k, entry, seen[k])

    def _settle(self, k: str, entry: Entry | None, tags: tuple, seen: int) -> None:
        """The L1 step of a write, after the lower tiers took it: store ``entry`` if no other
        write of the stripe completed meanwhile (the lower tiers then hold ours), else drop the
        key (which write the lower tiers kept is unknown); ``entry=None`` (a delete) drops it."""
        s = hash(k) & (_STRIPES - 1)
        with self._locks[s]:
            try:
                if entry is not None and self._stamps[s] == seen:
                    self._call(0, "set", (k, entry, tags, None))
                    self._stats[0].sets += 1
                else:
                    self._l1.delete(k)
            finally:
                self._stamps[s] += 1

    def _bump_all(self) -> None:
        """After a pattern, tag or whole-L1 drop: every back-fill in flight is suspect."""
        for s in range(_STRIPES):
            with self._locks[s]:
                self._stamps[s] += 1

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
            log.warning(
                "cache tier %s: could not delete unreadable %r: %s", self.tiers[i].name, k, err
            )

    async def _adiscard(self, i: int, k: str) -> None:
        try:
            await self.tiers[i].adelete(k)
        except CacheError as err:
            log.warning(
                "cache tier %s: could not delete unreadable %r: %s", self.tiers[i].name, k, err
            )

    def _run(self, plan: Plan) -> Any:
        try:
            method, i, args = next(plan)
            while True:
                method, i, args = plan.send(self._call(i, method, args))
        except StopIteration as stop:
            return stop.value

    async def _arun(self, plan: Plan) -> Any:
        try:
            method, i, args = next(plan)
            while True:
                result = await self._acall(i, method, args)
                method, i, args = plan.send(result)
        except StopIteration as stop:
            return stop.value

    # ------------------------------------------------------------------------------------------
    # reading

    def _key(self, key: Any) -> str:
        return normalize(key, self.key_func)

    def _lookup(self, k: str) -> Entry | None:
        """The fresh entry for ``k`` from any tier, or None."""
        store = self._l1_store
        if store is None:
            return self._run(self._read_plan(k, 0))
        entry = store.get(k)
        if entry is not None and (entry.expires_at is None or entry.expires_at > self.timer()):
            self._l1_hit_box[0] += 1
            return entry
        return self._run(self._read_plan(k, self._first(entry)))

    def _first(self, l1_entry: Entry | None) -> int:
        """Where a read continues after the L1 lookup missed: at L1 when it holds a stale copy
        (the plan drops it), else straight at L2."""
        if l1_entry is not None:
            return 0
        self._stats[0].misses += 1
        return 1

    def get(self, key: Any, default: Any = None) -> Any:
        """The value, from the fastest tier that has it fresh (back-filling the faster ones
        with the remaining TTL), or ``default``."""
        entry = self._lookup(self._key(key))
        return default if entry is None else entry.value

    def _fast_get(self) -> Callable[..., Any]:
        """``get`` for a cache with an L1 and plain string keys, as a closure over locals: the
        hit path is one cachebox lookup, one clock read and a counter (~160 ns here)."""
        store_get, timer, hits, lookup = (
            self._l1_store.get,
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

    def _mapped(self, keys: Iterable[Any]) -> dict[str, Any]:
        """Normalised key -> the caller's key (plain short strings pass straight through)."""
        if self.key_func is None:
            return {
                k if type(k) is str and len(k) <= MAX_KEY_LENGTH else self._key(k): k for k in keys
            }
        return {self._key(k): k for k in keys}

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """``{key: value}`` for the keys found (one round trip per tier: MGET, IN (...))."""
        mapped = self._mapped(keys)
        found = self._run(self._get_many_plan(list(mapped)))
        return {mapped[k]: e.value for k, e in found.items()}

    async def aget_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        mapped = self._mapped(keys)
        found = await self._arun(self._get_many_plan(list(mapped)))
        return {mapped[k]: e.value for k, e in found.items()}

    # ------------------------------------------------------------------------------------------
    # writing

    def _entry(self, value: Any, ttl: float | None) -> Entry:
        ttl = self.default_ttl if ttl is None else ttl
        if ttl is not None and not ttl > 0:
            raise CacheError(f"ttl must be positive seconds, got {ttl!r}")
        return Entry(value, None if ttl is None else self.timer() + ttl)

    def _below(self) -> range:
        """The tiers a write-through plan writes before L1 settles (all of them without L1)."""
        return range(1 if self._l1 is not None else 0, len(self.tiers))

    def _stage(self, k: str, item: tuple, entry: Entry | None, tags: tuple = ()) -> None:
        """Write-back: L1 now and the queue, in one order under the stripe lock, so the lower
        tiers receive a key's writes in the order L1 saw them."""
        if self._l1 is None:
            if entry is None:
                self._run(self._delete_plan(k, range(1)))
            else:
                self._run(self._write_plan(k, entry, tags, range(1)))
            self._enqueue(item)
            return
        s = hash(k) & (_STRIPES - 1)
        with self._locks[s]:
            try:
                if entry is None:
                    self._l1.delete(k)
                    self._stats[0].deletes += 1
                else:
                    self._call(0, "set", (k, entry, tags, None))
                    self._stats[0].sets += 1
            finally:
                self._stamps[s] += 1
            self._enqueue(item)

    def set(self, key: Any, value: Any, ttl: float | None = None, tags: Iterable[str] = ()) -> None:
        """Store ``value`` for ``ttl`` seconds (default ``default_ttl``) in every tier (write-back:
        L1 now, the others from the queue). ``tags`` let ``invalidate_tags`` find it later."""
        k, entry, tags = self._key(key), self._entry(value, ttl), tuple(tags)
        if self._queue is not None:
            for i in range(1, len(self.tiers)):  # serialise now: fail before acknowledging
                self.tiers[i].prepare(k, entry)
            self._stage(k, ("set", k, entry, tags), entry, tags)
            return  # published by the writer once the lower tiers hold it
        seen = self._stamp(k)
        self._run(self._write_plan(k, entry, tags, self._below()))
        if self._l1 is not None:
            self._settle(k, entry, tags, seen)
        self._publish("del", [k])

    async def aset(
        self, key: Any, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        k, entry, tags = self._key(key), self._entry(value, ttl), tuple(tags)
        if self._queue is not None:
            for i in range(1, len(self.tiers)):
                self.tiers[i].prepare(k, entry)
            self._stage(k, ("set", k, entry, tags), entry, tags)  # waits write_block at most
            return
        seen = self._stamp(k)
        await self._arun(self._write_plan(k, entry, tags, self._below()))
        if self._l1 is not None:
            self._settle(k, entry, tags, seen)
        self._publish("del", [k])

    def set_many(self, mapping: Mapping[Any, Any], ttl: float | None = None) -> None:
        """Store many values: one pipeline to Redis, one upsert to the database."""
        entries = {self._key(k): self._entry(v, ttl) for k, v in mapping.items()}
        for tier in self.tiers:  # serialise everything before writing anything
            for k, e in entries.items():
                tier.prepare(k, e)
        if self._queue is not None:
            if self._l1 is None:
                self._run(self._set_many_plan(entries, range(1)))
                self._enqueue(("set_many", entries))
                return
            for k, e in entries.items():  # one queue item per key keeps the per-key order
                self._stage(k, ("set", k, e, ()), e)
            return
        seen = [self._stamp(k) for k in entries]
        self._run(self._set_many_plan(entries, self._below()))
        if self._l1 is not None:
            for (k, e), stamp in zip(entries.items(), seen, strict=True):
                self._settle(k, e, (), stamp)
        self._publish("del", list(entries))

    def _set_many_plan(self, entries: dict[str, Entry], tiers: range) -> Plan:
        for i in reversed(tiers):
            done = yield ("set_many", i, (entries,))
            if done is not False:
                self._stats[i].sets += len(entries)

    async def aset_many(self, mapping: Mapping[Any, Any], ttl: float | None = None) -> None:
        await asyncio.to_thread(self.set_many, mapping, ttl)

    def delete(self, key: Any) -> bool:
        """Remove ``key`` from every tier (and from other processes' L1). True if any had it."""
        k = self._key(key)
        if self._queue is not None:
            found = self._l1 is not None and self._l1.get(k) is not None
            self._stage(k, ("delete", k), None)
            return found
        had = self._l1 is not None and self._l1.get(k) is not None
        found = self._run(self._delete_plan(k, self._below()))
        if self._l1 is not None:
            self._settle(k, None, (), 0)
            self._stats[0].deletes += 1
        self._publish("del", [k])
        return found or had

    async def adelete(self, key: Any) -> bool:
        k = self._key(key)
        if self._queue is not None:
            found = self._l1 is not None and self._l1.get(k) is not None
            self._stage(k, ("delete", k), None)
            return found
        had = self._l1 is not None and self._l1.get(k) is not None
        found = await self._arun(self._delete_plan(k, self._below()))
        if self._l1 is not None:
            self._settle(k, None, (), 0)
            self._stats[0].deletes += 1
        self._publish("del", [k])
        return found or had

    def invalidate(self, pattern: str = "*") -> int:
        """Delete keys matching a glob (``signals:*``) in every tier and every process's L1."""
        self.flush()
        total = sum(self._tier_op(i, "delete_pattern", pattern) for i in range(len(self.tiers)))
        if self._l1 is not None:
            self._bump_all()
        self._publish("pattern", [pattern])
        return total

    def invalidate_tags(self, *tags: str) -> int:
        """Delete every key set with any of ``tags``, everywhere (including copies that reached
        an L1 by back-fill, which carry no tags of their own). Returns how many keys."""
        self.flush()
        keys: set[str] = set()
        for i in range(len(self.tiers)):
            keys.update(self._call(i, "delete_tags", (tags,)) or ())
        if self._l1 is not None:
            for k in keys:
                self._l1.delete(k)
            self._bump_all()
        self._publish("del", sorted(keys))
        self._publish("tags", list(tags))
        return len(keys)

    def clear(self) -> None:
        self.flush()
        for i in range(len(self.tiers)):
            self._tier_op(i, "clear")
        if self._l1 is not None:
            self._bump_all()
        self._publish("pattern", ["*"])

    def _tier_op(self, i: int, method: str, *args: Any) -> int:
        result = self._call(i, method, args)
        return int(result or 0)

    # ------------------------------------------------------------------------------------------
    # loading: read-through, single-flight, refresh-ahead

    def get_or_load(
        self, key: Any, loader: Callable[[], Any], ttl: float | None = None, *, lock: bool = False
    ) -> Any:
        """The cached value, or ``loader()``'s, stored. Concurrent misses on one key call the
        loader once in this process (``lock=True``: once across processes, via a Redis lock).
        A loader that raises propagates to every waiter and caches nothing."""
        k = self._key(key)
        entry = self._lookup(k)
        if entry is not None:
            self._maybe_refresh(k, entry, loader, ttl)
            return entry.value
        flight, leader = self._join(k)
        if not leader:
            if flight.thread != threading.get_ident():
                flight.done.wait()
                return flight.result()
            # the leader is a task suspended on this thread's event loop: waiting here would
            # block that loop for good, so this caller loads for itself
            value = loader()
            self.set(k, value, ttl)
            return value
        try:
            with self._cross_process(k, lock):
                entry = self._lookup(k) if lock else None  # another process may have loaded it
                flight.value = entry.value if entry is not None else loader()
                if entry is None:
                    self.set(k, flight.value, ttl)
            return flight.value
        except BaseException as err:
            flight.error = err
            raise
        finally:
            with self._flight_lock:
                self._flights.pop(k, None)
            flight.finish()

    def _join(self, k: str) -> tuple[_Flight, bool]:
        """The flight loading ``k`` (sync and async callers share it), and whether we lead."""
        with self._flight_lock:
            flight = self._flights.get(k)
            if flight is not None:
                return flight, False
            flight = self._flights[k] = _Flight()
            return flight, True

    async def aget_or_load(
        self,
        key: Any,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None = None,
        *,
        lock: bool = False,
    ) -> Any:
        """``get_or_load`` for coroutine loaders: concurrent tasks share one load."""
        k = self._key(key)
        value = await self.aget(k, MISSING)
        if value is not MISSING:
            entry = self._l1_store.get(k) if self._l1_store is not None else None
            if entry is not None:
                self._maybe_refresh(k, entry, loader, ttl)
            return value
        flight, leader = self._join(k)
        if not leader:
            return await flight.wait()  # any loop, any thread: woken thread-safely
        try:
            if lock:
                async with self._alock(k):
                    value = await self.aget(k, MISSING)
                    if value is MISSING:
                        value = await loader()
                        await self.aset(k, value, ttl)
            else:
                value = await loader()
                await self.aset(k, value, ttl)
            flight.value = value
            return value
        except BaseException as err:
            flight.error = err
            raise
        finally:
            with self._flight_lock:
                self._flights.pop(k, None)
            flight.finish()

    def _maybe_refresh(self, k: str, entry: Entry, loader: Callable, ttl: float | None) -> None:
        ttl = self.default_ttl if ttl is None else ttl
        if self.refresh_ahead is None or ttl is None or entry.expires_at is None:
            return
        due = entry.expires_at - ttl * (1 - self.refresh_ahead)
        if self.timer() < due:
            return
        with self._flight_lock:
            if k in self._refreshing:
                return
            self._refreshing.add(k)
        if inspect.iscoroutinefunction(loader):

            async def reload() -> None:
                try:
                    await self.aset(k, await loader(), ttl)
                finally:
                    self._refreshing.discard(k)

            task = asyncio.get_running_loop().create_task(reload())
            task.add_done_callback(_log_failure)
            return

        def reload_sync() -> None:
            try:
                self.set(k, loader(), ttl)
            finally:
                self._refreshing.discard(k)

        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                2, thread_name_prefix="perflab-refresh"
            )
        self._executor.submit(reload_sync).add_done_callback(_log_failure)

    def cached(
        self, ttl: float | None = None, *, key: Callable[..., str] | None = None
    ) -> Callable:
        """Decorator: cache a function's results (sync or async) by its arguments."""

        def decorate(fn: Callable) -> Callable:
            prefix = f"{fn.__module__}.{fn.__qualname__}"

            def make(args: tuple, kwargs: dict) -> str:
                return key(*args, **kwargs) if key else call_key(prefix, args, kwargs)

            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def awrapper(*args: Any, **kwargs: Any) -> Any:
                    return await self.aget_or_load(
                        make(args, kwargs), lambda: fn(*args, **kwargs), ttl
                    )

                return awrapper

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.get_or_load(make(args, kwargs), lambda: fn(*args, **kwargs), ttl)

            return wrapper

        return decorate

    def warm(
        self,
        items: Mapping[Any, Any] | Iterable[Any],
        loader: Callable[[list], Mapping] | None = None,
        ttl: float | None = None,
    ) -> int:
        """Fill the cache in one batch: a mapping is stored as is; keys with a ``loader`` are
        loaded for those not already cached (``loader(missing_keys) -> {key: value}``).
        Returns how many values were stored."""
        if isinstance(items, Mapping):
            self.set_many(items, ttl)
            return len(items)
        if loader is None:
            raise CacheError("warm(keys) needs loader=, a function from a list of keys to a dict")
        keys = list(items)
        present = self.get_many(keys)
        missing = [k for k in keys if k not in present]
        if not missing:
            return 0
        loaded = dict(loader(missing))
        self.set_many(loaded, ttl)
        return len(loaded)

    # ------------------------------------------------------------------------------------------
    # locks

    def _redis(self) -> Any:
        from perflab.cache.redis_tier import RedisTier

        for tier in self.tiers:
            if isinstance(tier, RedisTier):
                return tier
        raise CacheError("a distributed lock needs a RedisTier in the cache")

    def lock(self, name: str, timeout: float = 10, blocking_timeout: float | None = None) -> Any:
        """A distributed lock (redis-py's Lock) held for at most ``timeout`` seconds:
        ``with cache.lock("rebuild"): ...``"""
        tier = self._redis()
        return tier.client.lock(
            f"{tier.prefix}__lock__:{name}", timeout=timeout, blocking_timeout=blocking_timeout
        )

    @contextlib.contextmanager
    def _cross_process(self, k: str, enabled: bool) -> Iterator[None]:
        if not enabled:
            yield
            return
        with self.lock(f"load:{k}", timeout=60):
            yield

    def _alock(self, k: str) -> Any:
        tier = self._redis()
        return tier.aclient.lock(f"{tier.prefix}__lock__:load:{k}", timeout=60)

    # ------------------------------------------------------------------------------------------
    # write-back

    def _enqueue(self, item: tuple) -> None:
        """Queue a write-back. A full queue (the writer stalled on an outage) waits at most
        ``write_block`` seconds once; until the writer makes progress again, further writes are
        not queued at all: counted in ``write_back_dropped``, logged once per stall."""
        if self._closed or self._stop.is_set():
            raise CacheError("the cache is closed; create a new TieredCache to write")
        try:
            self._queue.put_nowait(item)
            return
        except queue.Full:
            stalled = self._stalled
        if not stalled:
            try:
                self._queue.put(item, timeout=self.write_block)
                return
            except queue.Full:
                self._stalled = True
                log.error(
                    "cache write-back queue full (%d writes) for %.2f s: the lower tiers are "
                    "unavailable or too slow; further writes stay in L1 only (counted in "
                    "write_back_dropped) until the writer catches up",
                    self._queue.maxsize,
                    self.write_block,
                )
        self.write_back_dropped += 1

    def _drain(self) -> None:
        """The writer: takes what is queued (up to 512 items), writes it to the lower tiers
        (runs of plain sets as one set_many), then publishes the keys for other processes'
        L1s. A tier that is down is waited for (its breaker's pause), never skipped, so the
        order of a key's writes holds; close() bounds the wait."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < 512:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            items = [item for item in batch if item is not None]
            written = self._write_batch(items)
            if written:
                self._publish("del", written)
            for _ in batch:
                self._queue.task_done()
            if stop or self._stop.is_set():
                self._abandon()
                return

    def _write_batch(self, items: list[tuple]) -> list[str]:
        """Apply ``items`` in order; returns the keys written (for invalidation messages)."""
        written: list[str] = []
        run: dict[str, Entry] = {}
        for n, item in enumerate(items):
            if item[0] == "set" and not item[3]:
                run[item[1]] = item[2]  # a later set of the same key in the run wins, in order
                continue
            if run and not self._apply(("set_many", run)):
                self.write_back_failures += len(items) - n + len(run)
                return written
            written.extend(run)
            run = {}
            if not self._apply(item):
                self.write_back_failures += len(items) - n
                return written
            written.extend(item[1] if item[0] == "set_many" else [item[1]])
        if run:
            if not self._apply(("set_many", run)):
                self.write_back_failures += len(run)
                return written
            written.extend(run)
        return written

    def _apply(self, item: tuple) -> bool:
        """Write one item to every lower tier, waiting out outages; False if close() gave up."""
        pending = list(reversed(range(1, len(self.tiers))))  # slowest first, like write-through
        while pending:
            i = pending[0]
            tier, stats = self.tiers[i], self._stats[i]
            try:
                if item[0] == "set":
                    tier.set(item[1], item[2], item[3])
                    stats.sets += 1
                elif item[0] == "set_many":
                    tier.set_many(item[1])
                    stats.sets += len(item[1])
                else:
                    tier.delete(item[1])
                    stats.deletes += 1
            except TierUnavailable:  # the tier's breaker logged the outage, once
                stats.errors += 1
                breaker = getattr(tier, "_breaker", None)
                pause = breaker.down_until - breaker.timer() if breaker is not None else 0.5
                if self._stop.wait(max(0.01, pause)):
                    return False
                continue
            except CacheError as err:  # refused for good (too big, bad data): not retried
                stats.errors += 1
                self.write_back_failures += 1
                log.error("write-back to %s refused %s %r: %s", tier.name, item[0], item[1], err)
            pending.pop(0)
        self._stalled = False
        return True

    def _abandon(self) -> None:
        """close() gave up: count what is still queued as lost."""
        lost = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            lost += item is not None
            self._queue.task_done()
        self.write_back_failures += lost

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued write-back has reached the lower tiers, at most ``timeout``
        seconds (default ``close_timeout``). True if the queue drained."""
        if self._queue is None:
            return True
        timeout = self.close_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._writer.is_alive():
                    return False
                done.wait(min(remaining, 0.1))
        return True

    # ------------------------------------------------------------------------------------------
    # coherence between processes

    def _publish(self, kind: str, items: list[str]) -> None:
        if self._coherence is not None:
            self._coherence.publish(kind, items)

    def _drop_local(self, kind: str, items: list[str]) -> None:
        """Another process changed these: drop our L1 copies (and make back-fills in flight
        re-read). ``kind="all"``: the invalidation stream had a gap, every copy is suspect."""
        if self._l1 is None:
            return
        if kind == "del":
            for k in items:
                self._settle(k, None, (), 0)
            return
        if kind == "pattern":
            for pattern in items:
                self._l1.delete_pattern(pattern)
        elif kind == "tags":
            self._l1.delete_tags(items)
        elif kind == "all":
            self._l1.clear()
        self._bump_all()

    # ------------------------------------------------------------------------------------------
    # metrics and lifecycle

    def stats(self) -> pd.DataFrame:
        """One row per tier: hits, misses, sets, deletes, evictions, errors, hit ratio, sampled
        latency p50/p99 (µs), items and bytes where known."""
        rows = []
        for i, (tier, s) in enumerate(zip(self.tiers, self._stats, strict=True)):
            hits = s.hits + (self._l1_hit_box[0] if i == 0 and self._l1 is not None else 0)
            lat = np.asarray(s.latencies, dtype=float) / 1e3
            try:
                items, size = tier.size()
            except TierUnavailable:
                items, size = None, None
            rows.append(
                {
                    "tier": tier.name,
                    "hits": hits,
                    "misses": s.misses,
                    "sets": s.sets,
                    "deletes": s.deletes,
                    "evictions": getattr(tier, "evictions", None),
                    "errors": s.errors,
                    "hit_ratio": hits / (hits + s.misses) if hits + s.misses else float("nan"),
                    "p50_us": float(np.median(lat)) if lat.size else float("nan"),
                    "p99_us": float(np.percentile(lat, 99)) if lat.size else float("nan"),
                    "items": items,
                    "bytes": size,
                }
            )
        return pd.DataFrame(rows).set_index("tier")

    def close(self) -> None:
        """Flush write-back (for at most ``close_timeout`` seconds: with a lower tier down,
        what is still queued then is lost, counted in ``write_back_failures`` and logged once),
        stop background work, close the tiers. Idempotent."""
        if self._closed:
            return
        if self._queue is not None:
            deadline = time.monotonic() + self.close_timeout
            try:
                self._queue.put(None, timeout=self.close_timeout)
            except queue.Full:
                self._stop.set()
            self._writer.join(max(0.0, deadline - time.monotonic()))
            if self._writer.is_alive():
                self._stop.set()  # the writer stops waiting for the tier and counts the rest
                grace = max((getattr(t, "timeout", 0.0) for t in self.tiers), default=0.0)
                self._writer.join(grace + 1.0)  # at most one socket timeout in progress
            if self.write_back_failures or self.write_back_dropped:
                log.error(
                    "cache closed with %d write-backs not written to the lower tiers "
                    "(close_timeout=%s s) and %d never queued (queue full); those keys keep "
                    "older values (or none) there until their TTL",
                    self.write_back_failures + self._queue.qsize(),
                    self.close_timeout,
                    self.write_back_dropped,
                )
        self._closed = True
        if self._coherence is not None:
            self._coherence.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        for tier in self.tiers:
            tier.close()

    def __enter__(self) -> TieredCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TieredCache {' → '.join(t.name for t in self.tiers)} write={self.write}>"


class _Coherence:
    """Drops other processes' L1 copies: every write publishes the keys it changed on a Redis
    channel; a listener thread in each process deletes them from its own L1.

    The listener survives Redis: when its connection breaks, or a PING gets no answer within
    ``heartbeat`` + the tier's timeout (a hung server), it resubscribes with jittered backoff
    (``backoff`` seconds, doubling to ``max_backoff``) and, once subscribed again, drops the
    whole L1: invalidations sent while it was away are gone. Publishing goes through the tier's
    breaker: while Redis is down (or backing off) a message is kept, not waited for, and the
    listener sends what was kept once Redis answers again (merged; past ``max_pending`` keys,
    one "drop everything" message instead)."""

    backoff = 0.05
    max_backoff = 2.0
    heartbeat = 1.0
    max_pending = 10_000

    def __init__(self, cache: TieredCache, tier: Any) -> None:
        self.channel = f"{tier.prefix}__invalidate__"
        self.tier = tier
        self.origin = cache._origin
        self.ref = weakref.ref(cache)
        self.connected = threading.Event()
        self.resubscribed = 0  # reconnections after a gap (each dropped the L1)
        self._stop = threading.Event()
        self._pending: dict[str, dict[str, None]] = {}  # kind -> items (ordered set)
        self._pending_lock = threading.Lock()
        self._pubsub: Any = None
        try:
            self._pubsub = self._subscribe()
        except (RedisError, OSError) as err:  # keep trying in the thread
            log.warning("cache coherence: cannot subscribe on Redis yet (%s); retrying", err)
        self.thread = threading.Thread(target=self._run, name="perflab-coherence", daemon=True)
        self.thread.start()

    @classmethod
    def start(cls, cache: TieredCache) -> _Coherence | None:
        try:
            tier = cache._redis()
        except CacheError:
            return None
        return cls(cache, tier)

    # --- publishing ---------------------------------------------------------------------------
    def publish(self, kind: str, items: list[str]) -> None:
        """Send now if Redis is up (one round trip, behind the tier's breaker); otherwise keep
        the message for the listener to send after recovery. Never waits out an outage."""
        if not items:
            return
        message = json.dumps({"origin": self.origin, "kind": kind, "items": items})
        try:
            self.tier.publish(self.channel, message)
        except TierUnavailable:
            self._keep(kind, items)

    def _keep(self, kind: str, items: list[str]) -> None:
        with self._pending_lock:
            self._pending.setdefault(kind, {}).update(dict.fromkeys(items))
            if sum(len(v) for v in self._pending.values()) > self.max_pending:
                self._pending = {"all": {"*": None}}

    def _send_pending(self) -> None:
        with self._pending_lock:
            if not self._pending or not self.tier._breaker.allow():
                return
            pending, self._pending = self._pending, {}
        messages = [
            json.dumps({"origin": self.origin, "kind": kind, "items": list(items)})
            for kind, items in pending.items()
        ]
        try:
            self.tier.publish_many(self.channel, messages)
        except TierUnavailable:
            for kind, items in pending.items():
                self._keep(kind, list(items))

    # --- listening ----------------------------------------------------------------------------
    def _subscribe(self) -> Any:
        """A connection of its own (closing the tier must not cut it), subscribed: returns once
        Redis confirmed the subscription."""
        client = redis.Redis.from_url(
            self.tier.url,
            socket_connect_timeout=self.tier.timeout,
            socket_timeout=self.tier.timeout,
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            deadline = time.monotonic() + self.tier.timeout
            while time.monotonic() < deadline:
                message = pubsub.get_message(timeout=self.tier.timeout)
                if message is not None and message["type"] == "subscribe":
                    self.connected.set()
                    return pubsub
            raise redis.exceptions.TimeoutError(f"no SUBSCRIBE confirmation on {self.channel}")
        except BaseException:
            pubsub.close()
            client.close()
            raise

    def _run(self) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            if self._pubsub is None:
                try:
                    self._pubsub = self._subscribe()
                except (RedisError, OSError):
                    self._stop.wait(delay * random.uniform(0.5, 1.0))
                    delay = min(self.max_backoff, delay * 2)
                    continue
                delay = self.backoff
                self.resubscribed += 1
                target = self.ref()
                if target is not None:  # subscribed first, then dropped: nothing falls between
                    target._drop_local("all", [])
                log.warning(
                    "cache coherence resumed on %s; L1 dropped (it may have missed invalidations)",
                    self.channel,
                )
            try:
                self._listen(self._pubsub)
            except (RedisError, OSError) as err:
                log.warning("cache coherence lost (%s); resubscribing with backoff", err)
                self.connected.clear()
                self._close(self._pubsub)
                self._pubsub = None

    def _listen(self, pubsub: Any) -> None:
        """Until stopped, or raises when the connection breaks or a PING goes unanswered."""
        heard = time.monotonic()
        pinged: float | None = None
        while not self._stop.is_set():
            self._send_pending()
            message = pubsub.get_message(timeout=0.05)
            now = time.monotonic()
            if message is not None:
                heard, pinged = now, None
                if message["type"] == "message":
                    self._handle(message["data"])
                continue
            if pinged is None and now - heard > self.heartbeat:
                pubsub.ping()
                pinged = now
            elif pinged is not None and now - pinged > self.tier.timeout:
                raise redis.exceptions.TimeoutError(
                    f"Redis did not answer PING within {self.tier.timeout} s"
                )

    def _handle(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            origin, kind, items = message["origin"], message["kind"], message["items"]
        except (ValueError, KeyError, TypeError) as err:
            log.warning(
                "cache coherence: ignoring a malformed message on %s (%s)", self.channel, err
            )
            return
        target = self.ref()
        if target is not None and origin != self.origin:
            target._drop_local(kind, items)

    @staticmethod
    def _close(pubsub: Any) -> None:
        if pubsub is None:
            return
        try:
            pubsub.close()
        except (RedisError, OSError) as err:  # already broken: nothing left to release
            log.debug("closing a broken pub/sub connection: %s", err)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self._send_pending()
        self._close(self._pubsub)


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("refresh-ahead reload failed: %r", future.exception())


def _close_at_exit(ref: weakref.ref) -> None:
    cache = ref()
    if cache is not None:
        cache.close()
