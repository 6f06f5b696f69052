"""TieredCache behaviour on real tiers: expiry by an injected clock, back-fill with the remaining
TTL, write-back, single-flight, refresh-ahead, invalidation, serialisation safety."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import os
import pickle
import struct
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from perflab.cache import (
    DatabaseTier,
    Entry,
    MemoryTier,
    RedisTier,
    TieredCache,
    tier_from_url,
)
from perflab.errors import CacheError

from .cache_fixtures import LOADED

pytestmark = pytest.mark.servers


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def redis_tier(settings):
    tier = RedisTier(prefix=f"{settings.key_prefix}c{uuid.uuid4().hex[:8]}:", timeout=LOADED)
    yield tier
    tier.clear()
    tier.close()


@pytest.fixture
def db_tier():
    tier = DatabaseTier(table=f"cache_{uuid.uuid4().hex[:8]}")
    yield tier
    tier.drop()
    tier.close()


@pytest.fixture
def stack(redis_tier, db_tier, clock):
    cache = TieredCache([MemoryTier(1000), redis_tier, db_tier], default_ttl=60, timer=clock)
    yield cache
    cache.close()


# --- expiry and back-fill ----------


def test_ttl_by_the_injected_clock(stack, clock):
    stack.set("k", "v", ttl=10)
    clock.advance(9.9)
    assert stack.get("k") == "v"
    clock.advance(0.1)
    assert stack.get("k") is None  # expired in every tier, though Redis still holds the key


def test_lower_tier_hit_back_fills_with_the_remaining_ttl(stack, clock):
    stack.set("k", "v", ttl=100)
    stack.tiers[0].clear()
    stack.tiers[1].clear()
    clock.advance(40)
    assert stack.get("k") == "v"  # from the database
    for tier in stack.tiers[:2]:
        assert tier.get("k").expires_at == clock.now + 60  # 60 s left, not a fresh 100
    assert stack.stats().loc["database", "hits"] == 1


def test_expired_l1_copy_is_dropped_and_not_served(redis_tier, clock):
    cache = TieredCache([MemoryTier(10), redis_tier], timer=clock, default_ttl=5)
    cache.set("k", 1)
    clock.advance(6)
    assert cache.get("k", "gone") == "gone"
    assert cache.tiers[0].get("k") is None
    cache.close()


def test_get_many_back_fills(stack):
    stack.set_many({"a": 1, "b": 2, "c": 3})
    stack.tiers[0].clear()
    assert stack.get_many(["a", "b", "x"]) == {"a": 1, "b": 2}
    assert stack.tiers[0].get("a").value == 1


def test_memory_only_cache(clock):
    cache = TieredCache([MemoryTier(10)], timer=clock, default_ttl=None)
    cache.set("k", [1])
    assert cache.get("k") == [1] and cache.get("zz") is None
    assert cache.delete("k") and not cache.delete("k")
    cache.close()


# --- write modes ----------


def test_write_through_writes_every_tier_before_returning(stack):
    stack.set("k", {"x": 1})
    assert [t.get("k").value for t in stack.tiers] == [{"x": 1}] * 3


def test_write_back_loses_nothing_on_close(redis_tier, db_tier):
    cache = TieredCache([MemoryTier(100), redis_tier, db_tier], write="back", default_ttl=300)
    cache.set_many({f"m{i}": i for i in range(50)})
    for i in range(500):
        cache.set(f"k{i}", i)
    cache.delete("k0")
    cache.close()  # flushes
    fresh = TieredCache([redis_tier, db_tier], default_ttl=300, coherence=False)
    found = fresh.get_many([f"k{i}" for i in range(500)])
    assert len(found) == 499 and "k0" not in found and found["k499"] == 499
    assert db_tier.get("m49").value == 49


def test_unserialisable_value_fails_before_anything_is_written(stack):
    with pytest.raises(TypeError, match=r"'bad'.*object"):
        stack.set("bad", object())
    assert all(t.get("bad") is None for t in stack.tiers)
    with pytest.raises(TypeError, match="'badmany'"):
        stack.set_many({"fine": 1, "badmany": {1, object()}})
    assert all(t.get("fine") is None for t in stack.tiers)


# --- single-flight, refresh-ahead ----------


def test_stampede_of_threads_calls_the_loader_once(stack):
    calls = []
    gate = threading.Barrier(100)

    def loader():
        calls.append(1)
        time.sleep(0.2)
        return "value"

    results = []

    def worker():
        gate.wait()
        results.append(stack.get_or_load("hot", loader))

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == ["value"] * 100


def test_stampede_of_tasks_calls_the_loader_once(stack):
    calls = []

    async def loader():
        calls.append(1)
        await asyncio.sleep(0.1)
        return {"v": 1}

    async def main():
        return await asyncio.gather(*(stack.aget_or_load("hot", loader) for _ in range(100)))

    assert asyncio.run(main()) == [{"v": 1}] * 100 and len(calls) == 1


def test_a_failing_loader_reaches_every_waiter_and_caches_nothing(stack):
    gate = threading.Barrier(20)
    errors = []

    def loader():
        time.sleep(0.1)
        raise ValueError("upstream down")

    def worker():
        gate.wait()
        try:
            stack.get_or_load("bad", loader)
        except ValueError as err:
            errors.append(str(err))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == ["upstream down"] * 20
    assert stack.get("bad") is None

    async def main():
        async def aloader():
            raise KeyError("nope")

        results = await asyncio.gather(
            *(stack.aget_or_load("abad", aloader) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(r, KeyError) for r in results)

    asyncio.run(main())
    assert stack.get("abad") is None


def test_refresh_ahead_serves_then_reloads_once(redis_tier, clock):
    cache = TieredCache(
        [MemoryTier(10), redis_tier], default_ttl=10, refresh_ahead=0.8, timer=clock
    )
    version = [1]
    loads = []

    def loader():
        loads.append(version[0])
        return version[0]

    assert cache.get_or_load("k", loader) == 1
    version[0] = 2
    clock.advance(7)  # before 80 %: no reload
    assert cache.get_or_load("k", loader) == 1 and loads == [1]
    clock.advance(1.5)  # past 80 %: serve the current value, reload in the background
    served = [cache.get_or_load("k", loader) for _ in range(20)]
    # the first caller is served the cached value at once; the background reload may land
    # while the other 19 ask, and then they see the new value (never the old one after it)
    assert served[0] == 1 and set(served) <= {1, 2} and served == sorted(served)
    deadline = time.monotonic() + 10
    while cache.get("k") != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k") == 2 and loads == [1, 2]
    cache.close()


def test_cached_decorator_sync_and_async(stack):
    calls = []

    @stack.cached(ttl=30)
    def add(a, b=0):
        calls.append((a, b))
        return a + b

    assert add(1, b=2) == 3 and add(1, b=2) == 3 and add(2) == 2
    assert calls == [(1, 2), (2, 0)]

    @stack.cached()
    async def mul(a, b):
        calls.append(("mul", a, b))
        return a * b

    async def main():
        return [await mul(3, 4), await mul(3, 4)]

    assert asyncio.run(main()) == [12, 12] and calls.count(("mul", 3, 4)) == 1


def test_lock_is_exclusive(stack):
    first = stack.lock("rebuild", timeout=5, blocking_timeout=0.1)
    second = stack.lock("rebuild", timeout=5, blocking_timeout=0.1)
    assert first.acquire()
    try:
        assert not second.acquire()
    finally:
        first.release()
    assert second.acquire()
    second.release()


def test_lock_needs_redis(clock):
    with pytest.raises(CacheError, match="RedisTier"):
        TieredCache([MemoryTier(10)], timer=clock).lock("x")


# --- invalidation, warming, stats ----------


def test_invalidate_pattern_and_tags_everywhere(stack):
    stack.set("signals:AAPL", 1, tags=["AAPL"])
    stack.set("signals:MSFT", 2, tags=["MSFT"])
    stack.set("prices:AAPL", 3, tags=["AAPL"])
    stack.tiers[0].clear()
    assert stack.get("prices:AAPL") == 3  # back-filled into L1 without its tags
    assert stack.invalidate("signals:*") >= 2
    assert stack.get("signals:AAPL") is None and stack.get("signals:MSFT") is None
    assert stack.invalidate_tags("AAPL") == 1
    assert stack.get("prices:AAPL") is None
    assert all(t.get("prices:AAPL") is None for t in stack.tiers)


def test_warm_from_a_mapping_and_from_keys(stack):
    assert stack.warm({"a": 1, "b": 2}) == 2
    asked = []

    def loader(keys):
        asked.append(sorted(keys))
        return {k: k.upper() for k in keys}

    assert stack.warm(["a", "x", "y"], loader=loader) == 2
    assert asked == [["x", "y"]] and stack.get("y") == "Y"
    with pytest.raises(CacheError, match="loader"):
        stack.warm(["z"])


def test_stats_has_a_row_per_tier(stack):
    stack.set("k", 1)
    stack.get("k")
    stack.get("missing")
    frame = stack.stats()
    assert list(frame.index) == ["memory/lru", "redis", "database"]
    expected = {"hits", "misses", "sets", "evictions", "errors", "hit_ratio", "p50_us", "p99_us"}
    assert expected <= set(frame.columns)
    assert frame.loc["memory/lru", "hits"] == 1 and frame.loc["database", "misses"] == 1
    assert frame.loc["redis", "sets"] == 1


# --- keys and values ----------


def test_non_string_keys_need_a_key_function(stack, redis_tier, clock):
    with pytest.raises(TypeError, match=r"\(1, 2\).*tuple"):
        stack.set((1, 2), "v")
    cache = TieredCache(
        [MemoryTier(10), redis_tier], key_func=lambda k: ":".join(map(str, k)), timer=clock
    )
    cache.set(("AAPL", 2024), 1)
    assert cache.get(("AAPL", 2024)) == 1 and redis_tier.get("AAPL:2024").value == 1
    cache.close()


def test_long_keys_are_hashed(stack):
    long_key = "signals:" + "x" * 1000
    stack.set(long_key, 1)
    assert stack.get(long_key) == 1
    stored = stack.tiers[1].client.keys(stack.tiers[1].prefix + "signals:*")
    assert len(stored) == 1 and len(stored[0]) < 250


def test_json_carries_what_a_pandas_user_stores(stack):
    frame = pd.DataFrame(
        {"px": [1.5, 2.5], "sym": ["A", "B"], "ts": pd.to_datetime(["2024-01-01", "2024-01-02"])}
    )
    value = {
        "frame": frame,
        "series": pd.Series([1, 2], name="n"),
        "array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "scalar": np.float64(1.25),
        "when": dt.datetime(2024, 5, 1, 12, 30),
        "day": dt.date(2024, 5, 1),
        "money": decimal.Decimal("1.10"),
        "pair": (1, "a"),
        "tags": {"x"},
        "raw": b"\x00\x01",
    }
    stack.set("v", value)
    stack.tiers[0].clear()
    got = stack.get("v")  # through Redis and JSON
    pd.testing.assert_frame_equal(got["frame"], frame)
    pd.testing.assert_series_equal(got["series"], value["series"])
    assert got["array"].dtype == np.int32 and (got["array"] == value["array"]).all()
    assert got["scalar"] == 1.25 and got["when"] == value["when"] and got["day"] == value["day"]
    assert got["money"] == decimal.Decimal("1.10") and got["pair"] == (1, "a")
    assert got["tags"] == {"x"} and got["raw"] == b"\x00\x01"


def test_a_crafted_pickle_in_redis_is_never_executed(settings, tmp_path, clock):
    prefix = f"{settings.key_prefix}p{uuid.uuid4().hex[:8]}:"
    secret = "s3cret-s3cret-s3cret"
    tier = RedisTier(prefix=prefix, serializer="pickle", secret=secret)
    cache = TieredCache([MemoryTier(10), tier], timer=clock)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps(Exploit())
    header = struct.pack(">2sBBd", b"PL", 1, 3, float("nan"))
    tier.client.set(prefix + "evil", header + b"\x00" * 32 + payload)  # a forged signature
    tier.client.set(prefix + "unsigned", header + payload)
    assert cache.get("evil", "refused") == "refused"
    assert cache.get("unsigned", "refused") == "refused"
    assert not marker.exists()
    assert cache.stats().loc["redis", "errors"] == 2
    cache.set("ok", {"signed": True})  # our own signed payloads still work
    cache.tiers[0].clear()
    assert cache.get("ok") == {"signed": True}

    json_reader = TieredCache([RedisTier(prefix=prefix)], timer=clock, coherence=False)
    assert json_reader.get("ok", "refused") == "refused"  # written by pickle: a JSON cache refuses
    json_reader.close()
    cache.clear()
    cache.close()


def test_pickle_needs_an_explicit_secret(settings):
    with pytest.raises(CacheError, match="secret"):
        RedisTier(prefix=f"{settings.key_prefix}x:", serializer="pickle")


def test_tiers_from_urls(settings, tmp_path):
    memory = tier_from_url("memory://?max_items=5&policy=lfu")
    assert isinstance(memory, MemoryTier) and memory.max_items == 5 and memory.policy == "lfu"
    sqlite = tier_from_url(f"sqlite:///{tmp_path / 'c.db'}")
    assert isinstance(sqlite, DatabaseTier)
    sqlite.close()
    for bad, match in (
        ("memory://?max_items=lots", "integers"),
        ("memory://?size=5", "unknown option"),
        ("memory://?policy=random", "policy"),
        ("ftp://x", "no cache tier"),
    ):
        with pytest.raises(CacheError, match=match):
            tier_from_url(bad)


def test_bad_configuration_is_a_clear_error(clock):
    for kwargs, match in (
        ({"write": "sideways"}, "write"),
        ({"refresh_ahead": 1.5}, "refresh_ahead"),
        ({"default_ttl": 0}, "default_ttl"),
    ):
        with pytest.raises(CacheError, match=match):
            TieredCache([MemoryTier(10)], timer=clock, **kwargs)
    with pytest.raises(CacheError, match="at least one tier"):
        TieredCache([], timer=clock)
    cache = TieredCache([MemoryTier(10)], timer=clock)
    with pytest.raises(CacheError, match="ttl"):
        cache.set("k", 1, ttl=-1)


def test_entry_helpers():
    e = Entry(1, expires_at=10.0)
    assert e.expired(10.0) and not e.expired(9.99) and e.remaining(4.0) == 6.0
    assert Entry(1).remaining(5.0) is None and not Entry(1).expired(1e12)


def test_async_refresh_ahead_and_cross_process_lock(redis_tier, clock):
    cache = TieredCache(
        [MemoryTier(10), redis_tier], default_ttl=10, refresh_ahead=0.5, timer=clock
    )
    version = [1]

    async def loader():
        return version[0]

    async def main():
        assert await cache.aget_or_load("k", loader, lock=True) == 1
        version[0] = 2
        clock.advance(6)  # past half the TTL
        assert await cache.aget_or_load("k", loader) == 1  # served, reload scheduled
        for _ in range(200):
            if await cache.aget("k") == 2:
                return True
            await asyncio.sleep(0.01)
        return False

    assert asyncio.run(main())
    cache.close()


def test_msgpack_is_optional_and_says_how_to_get_it(settings):
    try:
        import msgpack  # noqa: F401
    except ImportError:
        with pytest.raises(CacheError, match="pip install msgpack"):
            RedisTier(prefix=f"{settings.key_prefix}m:", serializer="msgpack")
        return
    tier = RedisTier(prefix=f"{settings.key_prefix}m{uuid.uuid4().hex[:6]}:", serializer="msgpack")
    tier.set("k", Entry({"a": [1, 2]}))
    assert tier.get("k").value == {"a": [1, 2]}
    tier.clear()


def test_corrupt_payload_is_a_miss_not_a_crash(stack):
    redis_tier = stack.tiers[1]
    redis_tier.client.set(redis_tier.prefix + "junk", b"not an envelope")
    stack.tiers[0].clear()
    assert stack.get("junk", "miss") == "miss"
    assert stack.get_many(["junk"]) == {}
