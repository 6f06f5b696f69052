"""Plans: every TieredCache operation as a generator of tier operations, free of I/O.

A plan yields ``(method, i, args)`` and receives the result (see :mod:`perflab.cache.drivers`):
every read and write of a tier, L1's included (``fill``, ``settle``, ``peek_l1``,
``drop_l1``, ``bump_all`` are the cache's own steps on L1 and its stripes), every queueing of
a write-back (``enqueue``) and every message to other processes (``publish``). What a plan
does itself is arithmetic on what it received, and serialising values (``prepare``: CPU, so
that a value that cannot be stored fails before anything is written);
it decides fall-through, expiry, back-fill, L1 settling and which messages other processes get
(``("publish", -1, (kind, items))``: the sync driver sends it with the tier's client, the async
driver awaits the tier's async client, so an ``aset`` never does network I/O on the event
loop — a slow Redis once froze the loop 4.5 s of 6 that way).
The sync method and its async twin run the same plan (the pattern of httpx's auth flows), so
each operation is written once. The L1 hit path of ``get`` skips plans entirely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from perflab.cache.drivers import TierPlan
from perflab.cache.entry import Entry
from perflab.cache.keys import MAX_KEY_LENGTH, normalize
from perflab.cache.memory import MemoryTier
from perflab.cache.stats import TierStats, stats_frame
from perflab.cache.tier import Tier
from perflab.cache.writeback import WriteBackQueue
from perflab.errors import CacheError

__all__ = ["Plans"]


class Plans:
    """Mixin of TieredCache: the plans. The attributes are the cache's."""

    tiers: list[Tier]
    timer: Callable[[], float]
    default_ttl: float | None
    key_func: Callable[[Any], str] | None
    _stats: list[TierStats]
    _l1: MemoryTier | None
    _writeback: WriteBackQueue | None  # with write-back: the queue and its writer
    _l1_hit_box: list[int]

    # --- keys and entries --------------------------------------------------------------------
    def _key(self, key: Any) -> str:
        return normalize(key, self.key_func)

    def _mapped(self, keys: Iterable[Any]) -> dict[str, Any]:
        """Normalised key -> the caller's key (plain short strings pass straight through)."""
        if self.key_func is None:
            return {
                k if type(k) is str and len(k) <= MAX_KEY_LENGTH else self._key(k): k for k in keys
            }
        return {self._key(k): k for k in keys}

    def _entry(self, value: Any, ttl: float | None, key: str | None = None) -> Entry:
        ttl = self.default_ttl if ttl is None else ttl
        if ttl is not None and not ttl > 0:
            raise CacheError(
                f"ttl must be positive seconds, got {ttl!r}" + (f" for key {key!r}" if key else ""),
                key=key,
            )
        return Entry(value, None if ttl is None else self.timer() + ttl)

    def _below(self) -> range:
        """The tiers a write-through plan writes before L1 settles (all of them without L1)."""
        return range(1 if self._l1 is not None else 0, len(self.tiers))

    def _first(self, l1_entry: Entry | None) -> int:
        """Where a read continues after the L1 lookup missed: at L1 when it holds a stale copy
        (the plan drops it), else straight at L2."""
        if l1_entry is not None:
            return 0
        self._stats[0].misses += 1
        return 1

    # --- the tier chain ----------------------------------------------------------------------
    def _read_plan(self, key: str, first: int) -> TierPlan:
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
                    yield ("fill", -1, (key, entry, seen))
                else:
                    yield ("set", j, (key, entry, (), None))
            return entry
        return None

    def _write_plan(self, key: str, entry: Entry, tags: tuple[Any, ...], tiers: range) -> TierPlan:
        # serialise for every tier first: a value that can't be stored fails before any write
        data = [self.tiers[i].prepare(key, entry) for i in tiers]
        for i, prepared in zip(reversed(tiers), reversed(data), strict=True):  # slowest first
            done = yield ("set", i, (key, entry, tags, prepared))
            if done is not False:
                self._stats[i].sets += 1

    def _delete_plan(self, key: str, tiers: range) -> TierPlan:
        found = False
        for i in tiers:
            deleted = yield ("delete", i, (key,))
            found = found or bool(deleted)
            self._stats[i].deletes += 1
        return found

    def _get_many_plan(self, keys: list[str]) -> TierPlan:
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
                        yield ("fill_many", -1, (fresh, stamps))
                    else:
                        yield ("set_many", j, (fresh,))
            if not found and len(fresh) == len(wanted):
                return fresh  # all found in one tier: the common case
            found.update(fresh)
            wanted = [k for k in wanted if k not in fresh]
            if not wanted:
                break
        return found

    def _set_many_plan(self, entries: dict[str, Entry], tiers: range) -> TierPlan:
        for i in reversed(tiers):
            done = yield ("set_many", i, (entries,))
            if done is not False:
                self._stats[i].sets += len(entries)

    # --- the public operations ---------------------------------------------------------------
    def _get_many_op(self, mapped: dict[str, Any]) -> TierPlan:
        found = yield from self._get_many_plan(list(mapped))
        return {mapped[k]: e.value for k, e in found.items()}

    def _set_op(self, k: str, entry: Entry, tags: tuple[Any, ...]) -> TierPlan:
        if self._writeback is not None:
            for i in range(1, len(self.tiers)):  # serialise now: fail before acknowledging
                self.tiers[i].prepare(k, entry)
            yield from self._stage(k, ("set", k, entry, tags), entry, tags)
            return  # published by the writer once the lower tiers hold it
        seen = self._stamp(k)
        yield from self._write_plan(k, entry, tags, self._below())
        if self._l1 is not None:
            yield ("settle", -1, (k, entry, tags, seen))
        yield ("publish", -1, ("del", [k]))

    def _set_many_op(self, mapping: Mapping[Any, Any], ttl: float | None) -> TierPlan:
        entries = {}
        for key, value in mapping.items():
            k = self._key(key)
            entries[k] = self._entry(value, ttl, k)
        for tier in self.tiers:  # serialise everything before writing anything
            for k, e in entries.items():
                tier.prepare(k, e)
        if self._writeback is not None:
            if self._l1 is None:
                yield from self._set_many_plan(entries, range(1))
                yield from self._writeback.enqueue_plan(("set_many", entries))
                return
            for k, e in entries.items():  # one queue item per key keeps the per-key order
                yield from self._stage(k, ("set", k, e, ()), e)
            return
        seen = [self._stamp(k) for k in entries]
        yield from self._set_many_plan(entries, self._below())
        if self._l1 is not None:
            for (k, e), stamp in zip(entries.items(), seen, strict=True):
                yield ("settle", -1, (k, e, (), stamp))
        yield ("publish", -1, ("del", list(entries)))

    def _delete_op(self, k: str) -> TierPlan:
        had = self._l1 is not None and (yield ("peek_l1", -1, (k,))) is not None
        if self._writeback is not None:
            yield from self._stage(k, ("delete", k), None)
            return had
        found = yield from self._delete_plan(k, self._below())
        if self._l1 is not None:
            yield ("settle", -1, (k, None, (), 0))
            self._stats[0].deletes += 1
        yield ("publish", -1, ("del", [k]))
        return found or had

    def _invalidate_op(self, pattern: str) -> TierPlan:
        yield from self._flush_plan(None)
        total = 0
        for i in range(len(self.tiers)):
            total += int((yield ("delete_pattern", i, (pattern,))) or 0)
        if self._l1 is not None:
            yield ("bump_all", -1, ())
        yield ("publish", -1, ("pattern", [pattern]))
        return total

    def _invalidate_tags_op(self, tags: tuple[str, ...]) -> TierPlan:
        yield from self._flush_plan(None)
        keys: set[str] = set()
        for i in range(len(self.tiers)):
            keys.update((yield ("delete_tags", i, (tags,))) or ())
        if self._l1 is not None:
            for k in keys:  # copies back-filled into L1 carry no tags of their own
                yield ("drop_l1", -1, (k,))
            yield ("bump_all", -1, ())
        yield ("publish", -1, ("del", sorted(keys)))
        yield ("publish", -1, ("tags", list(tags)))
        return len(keys)

    def _clear_op(self) -> TierPlan:
        yield from self._flush_plan(None)
        for i in range(len(self.tiers)):
            yield ("clear", i, ())
        if self._l1 is not None:
            yield ("bump_all", -1, ())
        yield ("publish", -1, ("pattern", ["*"]))

    def _warm_op(
        self, items: Any, loader: Callable[..., Any] | None, ttl: float | None
    ) -> TierPlan:
        if isinstance(items, Mapping):
            yield from self._set_many_op(items, ttl)
            return len(items)
        if loader is None:
            raise CacheError("warm(keys) needs loader=, a function from a list of keys to a dict")
        keys = list(items)
        present = yield from self._get_many_op(self._mapped(keys))
        missing = [k for k in keys if k not in present]
        if not missing:
            return 0
        loaded = dict((yield ("invoke", -1, (loader, (missing,)))))
        yield from self._set_many_op(loaded, ttl)
        return len(loaded)

    def _stats_op(self) -> TierPlan:
        rows = []
        for i, (tier, s) in enumerate(zip(self.tiers, self._stats, strict=True)):
            sizes = yield ("size", -1, (i,))
            extra = self._l1_hit_box[0] if i == 0 and self._l1 is not None else 0
            evictions, expired = getattr(tier, "evictions", None), getattr(tier, "purged", None)
            rows.append((tier.name, s, extra, evictions, expired, sizes))
        return stats_frame(rows)

    # --- write-back: L1's step and the queue ---------------------------------------------
    def _stage(
        self, k: str, item: tuple[Any, ...], entry: Entry | None, tags: tuple[Any, ...] = ()
    ) -> TierPlan:
        """L1 now and the queue, in one order under the stripe lock, so the lower tiers
        receive a key's writes in the order L1 saw them (without L1: the first tier now)."""
        writeback = self._writeback
        assert writeback is not None  # only called with write-back on
        if self._l1 is None:
            if entry is None:
                yield from self._delete_plan(k, range(1))
            else:
                yield from self._write_plan(k, entry, tags, range(1))
            yield from writeback.enqueue_plan(item)
            return
        yield from writeback.enqueue_plan(item, lambda offer: self._stage_l1(k, entry, tags, offer))

    def _flush_plan(self, timeout: float | None) -> TierPlan:
        """True once every queued write-back reached the lower tiers (at once without one)."""
        if self._writeback is None:
            return True
        done = yield from self._writeback.flush_plan(timeout)
        return done

    # provided by the other parts of TieredCache
    _stamp: Callable[[str], int]
    _settle: Callable[[str, Entry | None, tuple[Any, ...], int], None]
    _bump_all: Callable[[], None]
    _stage_l1: Callable[[str, Entry | None, tuple[Any, ...], Any], bool]
