"""Loading: read-through (``get_or_load``), single-flight, refresh-ahead and ``cached``.

Concurrent misses on one key call the loader once in this process: the first caller leads a
:class:`Flight`, the others wait for it; sync and async callers of one key share one flight
table. ``lock=True`` adds a cross-process lock (a tier that ``supports_locks``). A hit after
``refresh_ahead`` of the TTL returns the value and reloads it once in the background.

:class:`Loader` is a part of TieredCache of its own (composition): it loads through the cache's
public reads and writes (what :class:`LoadingCache` names) and the cache's ``get_or_load``,
``aget_or_load`` and ``cached`` hand the work to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from perflab.cache.entry import Entry
from perflab.cache.keys import call_key

__all__ = ["Flight", "Loader", "LoadingCache"]

log = logging.getLogger("perflab.cache")
MISSING: Any = object()


class Flight:
    """One in-process load of a key that other callers wait for: threads block on ``done``;
    tasks of any event loop (in any thread) await a future of their own loop, woken with
    ``call_soon_threadsafe``. Sync and async callers of one key share one flight."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.get_ident()  # the leader's thread
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []
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


def _wake(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("refresh-ahead reload failed: %r", future.exception())


class LoadingCache(Protocol):
    """What a :class:`Loader` uses of its cache: settings and the public reads and writes."""

    default_ttl: float | None
    refresh_ahead: float | None
    timer: Callable[[], float]

    def set(self, key: Any, value: Any, ttl: float | None = ..., tags: Any = ...) -> None: ...

    async def aget(self, key: Any, default: Any = ...) -> Any: ...

    async def aset(
        self, key: Any, value: Any, ttl: float | None = ..., tags: Any = ...
    ) -> None: ...

    def lock(
        self, name: str, timeout: float = ..., blocking_timeout: float | None = ...
    ) -> Any: ...

    def alock(
        self, name: str, timeout: float = ..., blocking_timeout: float | None = ...
    ) -> Any: ...


class Loader:
    """Read-through loads for one cache: the flight table, refresh-ahead's reloads and their
    threads. ``key`` normalises a key, ``lookup`` finds a fresh entry in any tier (the cache's
    own); ``l1_store`` is the store behind L1 (``None`` without L1), read directly for what a
    flight that just landed stored."""

    def __init__(
        self,
        cache: LoadingCache,
        key: Callable[[Any], str],
        lookup: Callable[[str], Entry | None],
        l1_store: Any,
    ) -> None:
        self.cache, self._key, self._lookup, self._l1_store = cache, key, lookup, l1_store
        self.flights: dict[str, Flight] = {}
        self._flight_lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._reloads: set[concurrent.futures.Future[Any]] = set()

    def get_or_load(
        self, key: Any, loader: Callable[[], Any], ttl: float | None, lock: bool
    ) -> Any:
        """The cached value, or ``loader()``'s, stored; one load per key at a time (see
        :meth:`TieredCache.get_or_load <perflab.cache.tiered.TieredCache.get_or_load>`)."""
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
            self.cache.set(k, value, ttl)
            return value
        try:
            with self._cross_process(k, lock):
                # another process may have loaded it (lock), or a flight that landed between
                # our miss and our join (its value is in L1 then)
                entry = self._lookup(k) if lock else self._landed(k)
                flight.value = entry.value if entry is not None else loader()
                if entry is None:
                    self.cache.set(k, flight.value, ttl)
            return flight.value
        except BaseException as err:
            flight.error = err
            raise
        finally:
            self._land(k, flight)

    async def aget_or_load(
        self, key: Any, loader: Callable[[], Awaitable[Any]], ttl: float | None, lock: bool
    ) -> Any:
        """``get_or_load`` for coroutine loaders: concurrent tasks share one load."""
        k = self._key(key)
        value = await self.cache.aget(k, MISSING)
        if value is not MISSING:
            entry = self._l1_store.get(k) if self._l1_store is not None else None
            if entry is not None:
                self._maybe_refresh(k, entry, loader, ttl)
            return value
        flight, leader = self._join(k)
        if not leader:
            return await flight.wait()  # any loop, any thread: woken thread-safely
        try:
            async with self._across_processes(k, lock):
                if lock:
                    value = await self.cache.aget(k, MISSING)
                else:
                    entry = self._landed(k)
                    value = MISSING if entry is None else entry.value
                if value is MISSING:
                    value = await loader()
                    await self.cache.aset(k, value, ttl)
            flight.value = value
            return value
        except BaseException as err:
            flight.error = err
            raise
        finally:
            self._land(k, flight)

    def _join(self, k: str) -> tuple[Flight, bool]:
        """The flight loading ``k`` (sync and async callers share it), and whether we lead."""
        with self._flight_lock:
            flight = self.flights.get(k)
            if flight is not None:
                return flight, False
            flight = self.flights[k] = Flight()
            return flight, True

    def _landed(self, k: str) -> Entry | None:
        """The fresh L1 entry a flight that landed just before ours stored, if any."""
        entry = self._l1_store.get(k) if self._l1_store is not None else None
        if entry is None or entry.expired(self.cache.timer()):
            return None
        typed: Entry | None = entry
        return typed

    def _land(self, k: str, flight: Flight) -> None:
        with self._flight_lock:
            self.flights.pop(k, None)
        flight.finish()

    @contextlib.contextmanager
    def _cross_process(self, k: str, enabled: bool) -> Iterator[None]:
        if not enabled:
            yield
            return
        with self.cache.lock(f"load:{k}", timeout=60):
            yield

    @contextlib.asynccontextmanager
    async def _across_processes(self, k: str, enabled: bool) -> Any:
        if not enabled:
            yield
            return
        async with self.cache.alock(f"load:{k}", timeout=60):
            yield

    def _maybe_refresh(
        self, k: str, entry: Entry, loader: Callable[..., Any], ttl: float | None
    ) -> None:
        ttl = self.cache.default_ttl if ttl is None else ttl
        if self.cache.refresh_ahead is None or ttl is None or entry.expires_at is None:
            return
        due = entry.expires_at - ttl * (1 - self.cache.refresh_ahead)
        if self.cache.timer() < due:
            return
        with self._flight_lock:
            if k in self._refreshing:
                return
            self._refreshing.add(k)
        if inspect.iscoroutinefunction(loader):

            async def reload() -> None:
                try:
                    await self.cache.aset(k, await loader(), ttl)
                finally:
                    self._refreshing.discard(k)

            task = asyncio.get_running_loop().create_task(reload())
            task.add_done_callback(_log_failure)
            return

        def reload_sync() -> None:
            try:
                self.cache.set(k, loader(), ttl)
            finally:
                self._refreshing.discard(k)

        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                2, thread_name_prefix="perflab-refresh"
            )
        future = self._executor.submit(reload_sync)
        self._reloads.add(future)
        future.add_done_callback(self._reloads.discard)
        future.add_done_callback(_log_failure)

    def stop_plan(self) -> Any:
        """close()'s part: let background reloads finish, then stop their threads."""
        if self._executor is None:
            return
        for future in list(self._reloads):
            while not future.done():
                yield ("wait", -1, (future, 1.0))
        self._executor.shutdown(wait=True)

    def cached(
        self, ttl: float | None = None, *, key: Callable[..., str] | None = None
    ) -> Callable[..., Any]:
        """Decorator: cache a function's results (sync or async) by its arguments. One
        decorator serves both kinds (so it has no async twin of its own)."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            prefix = f"{fn.__module__}.{fn.__qualname__}"

            def make(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
                return key(*args, **kwargs) if key else call_key(prefix, args, kwargs)

            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def awrapper(*args: Any, **kwargs: Any) -> Any:
                    return await self.aget_or_load(
                        make(args, kwargs), lambda: fn(*args, **kwargs), ttl, False
                    )

                return awrapper

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.get_or_load(make(args, kwargs), lambda: fn(*args, **kwargs), ttl, False)

            return wrapper

        return decorate
