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
    """One in-process load of a key that other callers wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


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
        self._aflights: dict[str, asyncio.Future] = {}
        self._flight_lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False
        self._queue: queue.Queue | None = None
        self._writer: threading.Thread | None = None
        self.write_back_failures = 0
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
        for i in range(first, len(self.tiers)):
            entry = yield ("get", i, (key,))
            if entry is None or entry.expired(now):
                self._stats[i].misses += 1
                if entry is not None and i == 0:
                    yield ("delete", 0, (key,))  # drop the expired L1 copy
                continue
            self._stats[i].hits += 1
            for j in range(i):  # back-fill faster tiers; same expires_at = the remaining TTL
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
        found: dict[str, Entry] = {}
        wanted = keys
        for i in range(len(self.tiers)):
            got = (yield ("get_many", i, (wanted,))) or {}
            fresh = {k: e for k, e in got.items() if e.expires_at is None or e.expires_at > now}
            self._stats[i].hits += len(fresh)
            self._stats[i].misses += len(wanted) - len(fresh)
            if fresh and i:
                for j in range(i):
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

    def _lower(self) -> range:
        return range(1, len(self.tiers)) if self._queue is not None else range(len(self.tiers))

    def set(self, key: Any, value: Any, ttl: float | None = None, tags: Iterable[str] = ()) -> None:
        """Store ``value`` for ``ttl`` seconds (default ``default_ttl``) in every tier (write-back:
        L1 now, the others from the queue). ``tags`` let ``invalidate_tags`` find it later."""
        k, entry, tags = self._key(key), self._entry(value, ttl), tuple(tags)
        if self._queue is not None:
            for i in range(1, len(self.tiers)):  # serialise now: fail before acknowledging
                self.tiers[i].prepare(k, entry)
            self._run(self._write_plan(k, entry, tags, range(1)))
            self._enqueue(("set", k, entry, tags))
        else:
            self._run(self._write_plan(k, entry, tags, range(len(self.tiers))))
        self._publish("del", [k])

    async def aset(
        self, key: Any, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        k, entry, tags = self._key(key), self._entry(value, ttl), tuple(tags)
        if self._queue is not None:
            for i in range(1, len(self.tiers)):
                self.tiers[i].prepare(k, entry)
            await self._arun(self._write_plan(k, entry, tags, range(1)))
            await asyncio.to_thread(self._enqueue, ("set", k, entry, tags))
        else:
            await self._arun(self._write_plan(k, entry, tags, range(len(self.tiers))))
        self._publish("del", [k])

    def set_many(self, mapping: Mapping[Any, Any], ttl: float | None = None) -> None:
        """Store many values: one pipeline to Redis, one upsert to the database."""
        entries = {self._key(k): self._entry(v, ttl) for k, v in mapping.items()}
        for tier in self.tiers:  # serialise everything before writing anything
            for k, e in entries.items():
                tier.prepare(k, e)
        if self._queue is not None:
            self._run(self._set_many_plan(entries, range(1)))
            self._enqueue(("set_many", entries))
        else:
            self._run(self._set_many_plan(entries, range(len(self.tiers))))
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
            found = self._run(self._delete_plan(k, range(1)))
            self._enqueue(("delete", k))
        else:
            found = self._run(self._delete_plan(k, range(len(self.tiers))))
        self._publish("del", [k])
        return found

    async def adelete(self, key: Any) -> bool:
        k = self._key(key)
        if self._queue is not None:
            found = await self._arun(self._delete_plan(k, range(1)))
            await asyncio.to_thread(self._enqueue, ("delete", k))
        else:
            found = await self._arun(self._delete_plan(k, range(len(self.tiers))))
        self._publish("del", [k])
        return found

    def invalidate(self, pattern: str = "*") -> int:
        """Delete keys matching a glob (``signals:*``) in every tier and every process's L1."""
        self.flush()
        total = sum(self._tier_op(i, "delete_pattern", pattern) for i in range(len(self.tiers)))
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
        self._publish("del", sorted(keys))
        self._publish("tags", list(tags))
        return len(keys)

    def clear(self) -> None:
        self.flush()
        for i in range(len(self.tiers)):
            self._tier_op(i, "clear")
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
        with self._flight_lock:
            flight = self._flights.get(k)
            leader = flight is None
            if leader:
                flight = self._flights[k] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
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
            flight.done.set()

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
        future = self._aflights.get(k)
        if future is not None:
            return await asyncio.shield(future)
        future = asyncio.get_running_loop().create_future()
        self._aflights[k] = future
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
            future.set_result(value)
            return value
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved here, so an unawaited future doesn't warn
            raise
        finally:
            self._aflights.pop(k, None)

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
        if self._closed:
            raise CacheError("the cache is closed")
        self._queue.put(item)  # bounded: blocks when full rather than dropping a write

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._apply(item)
            finally:
                self._queue.task_done()

    def _apply(self, item: tuple) -> None:
        lower = range(1, len(self.tiers))
        for attempt in range(5):
            try:
                if item[0] == "set":
                    _, k, entry, tags = item
                    for i in reversed(lower):
                        self.tiers[i].set(k, entry, tags)
                        self._stats[i].sets += 1
                elif item[0] == "set_many":
                    for i in reversed(lower):
                        self.tiers[i].set_many(item[1])
                        self._stats[i].sets += len(item[1])
                else:
                    for i in lower:
                        self.tiers[i].delete(item[1])
                        self._stats[i].deletes += 1
                return
            except TierUnavailable:
                time.sleep(min(2.0, 0.1 * 2**attempt))
        self.write_back_failures += 1
        log.error(
            "write-back gave up on %s %r after 5 attempts",
            item[0],
            item[1] if len(item) > 1 else "",
        )

    def flush(self) -> None:
        """Wait until every queued write-back has reached the lower tiers."""
        if self._queue is not None:
            self._queue.join()

    # ------------------------------------------------------------------------------------------
    # coherence between processes

    def _publish(self, kind: str, items: list[str]) -> None:
        if self._coherence is not None:
            self._coherence.publish(kind, items)

    def _drop_local(self, kind: str, items: list[str]) -> None:
        if self._l1 is None:
            return
        if kind == "del":
            for k in items:
                self._l1.delete(k)
        elif kind == "pattern":
            for pattern in items:
                self._l1.delete_pattern(pattern)
        elif kind == "tags":
            self._l1.delete_tags(items)

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
        """Flush write-back, stop background work, close the tiers. Idempotent."""
        if self._closed:
            return
        if self._queue is not None:
            self._queue.put(None)
            self._writer.join()
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
    channel; a listener thread in each process deletes them from its own L1."""

    def __init__(self, cache: TieredCache, tier: Any) -> None:
        self.channel = f"{tier.prefix}__invalidate__"
        self.client = tier.client
        self.origin = cache._origin
        ref = weakref.ref(cache)
        # a connection of its own: closing the tier (or another cache on it) must not cut it
        self.listener = redis.Redis.from_url(tier.url, socket_connect_timeout=tier.timeout)
        self.pubsub = self.listener.pubsub(ignore_subscribe_messages=True)

        def handle(message: dict) -> None:
            data = json.loads(message["data"])
            target = ref()
            if target is not None and data["origin"] != self.origin:
                target._drop_local(data["kind"], data["items"])

        def failed(err: BaseException, pubsub: Any, thread: Any) -> None:
            # Redis went away: stop listening; L1 copies still expire by their TTL
            log.warning("cache coherence stopped: %s", err)
            thread.stop()

        self.pubsub.subscribe(**{self.channel: handle})
        self.thread = self.pubsub.run_in_thread(
            sleep_time=0.05, daemon=True, exception_handler=failed
        )

    @classmethod
    def start(cls, cache: TieredCache) -> _Coherence | None:
        try:
            tier = cache._redis()
        except CacheError:
            return None
        try:
            return cls(cache, tier)
        except (RedisError, OSError) as err:  # Redis down at start: no coherence, said once
            log.warning("cache coherence off: cannot subscribe on Redis (%s)", err)
            return None

    def publish(self, kind: str, items: list[str]) -> None:
        message = json.dumps({"origin": self.origin, "kind": kind, "items": items})
        try:
            self.client.publish(self.channel, message)
        except (RedisError, OSError) as err:  # an outage: L1s expire by TTL meanwhile
            log.debug("coherence publish failed: %s", err)

    def stop(self) -> None:
        self.thread.stop()
        self.thread.join(timeout=2)
        self.pubsub.close()
        self.listener.close()


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("refresh-ahead reload failed: %r", future.exception())


def _close_at_exit(ref: weakref.ref) -> None:
    cache = ref()
    if cache is not None:
        cache.close()
