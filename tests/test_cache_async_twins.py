"""Every public TieredCache method has an async twin on the same plan; the async twins work on
real tiers (Redis, PostgreSQL) without a thread hop; the capabilities and errors of the split."""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid

import pytest

from perflab.cache import DatabaseTier, MemoryTier, RedisTier, TieredCache
from perflab.errors import CacheError

from .cache_fixtures import LOADED

# ``cached`` decorates sync and async functions alike, so it is its own twin
ONE_FOR_BOTH = {"cached"}


def public_methods() -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(TieredCache, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_public_method_has_an_async_twin():
    methods = public_methods()
    sync = [n for n in methods if not (n.startswith("a") and n[1:] in methods)]
    assert {
        "get",
        "set",
        "delete",
        "invalidate",
        "invalidate_tags",
        "clear",
        "warm",
        "lock",
    } <= set(sync)
    missing = [n for n in sync if n not in ONE_FOR_BOTH and "a" + n not in methods]
    assert missing == []
    for name in sync:
        if name in ONE_FOR_BOTH:
            continue
        twin = methods["a" + name]
        assert (
            inspect.signature(twin).parameters.keys()
            == inspect.signature(methods[name]).parameters.keys()
        ), name
        if name == "lock":  # ``async with cache.alock(...)``: an async context manager
            continue
        assert inspect.iscoroutinefunction(twin), f"a{name} is not a coroutine function"


def test_no_twin_hops_to_a_thread():
    source = inspect.getsource(TieredCache)
    assert "to_thread" not in source and "run_in_executor" not in source


@pytest.fixture
def redis_tier(settings):
    tier = RedisTier(prefix=f"{settings.key_prefix}tw{uuid.uuid4().hex[:8]}:", timeout=LOADED)
    yield tier
    tier.clear()
    tier.client.delete(tier.channel("invalidate"))


@pytest.fixture
def db_tier():
    tier = DatabaseTier(table=f"cache_{uuid.uuid4().hex[:8]}")
    yield tier
    tier.drop()


@pytest.mark.servers
def test_async_twins_on_real_tiers(redis_tier, db_tier):
    async def scenario(cache: TieredCache) -> None:
        await cache.aset_many({"a:1": 1, "a:2": 2, "b:1": 3})
        assert cache.tiers[1].get("a:1").value == 1 and cache.tiers[2].get("b:1").value == 3
        await cache.aset("t:1", "x", tags=["T"])
        assert await cache.ainvalidate("a:*") >= 2
        assert await cache.aget("a:1") is None and await cache.aget("b:1") == 3
        assert await cache.ainvalidate_tags("T") == 1
        assert all(t.get("t:1") is None for t in cache.tiers)

        async def load(missing: list) -> dict:
            return {k: k.upper() for k in missing}

        assert await cache.awarm(["w:1", "b:1"], load) == 1  # b:1 is cached already
        assert await cache.aget_many(["w:1", "b:1"]) == {"w:1": "W:1", "b:1": 3}
        assert await cache.adelete("w:1") and not await cache.adelete("w:1")
        async with cache.alock("rebuild", timeout=5, blocking_timeout=0.1):
            assert not cache.lock("rebuild", timeout=5, blocking_timeout=0.1).acquire()
        stats = await cache.astats()
        assert list(stats.index) == ["memory/lru", "redis", "database"]
        assert await cache.aflush() is True
        await cache.aclear()
        assert await cache.aget("b:1") is None and db_tier.get("b:1") is None
        await cache.aclose()
        assert cache._closed and not cache._coherence.thread.is_alive()

    cache = TieredCache([MemoryTier(100), redis_tier, db_tier], default_ttl=60)
    asyncio.run(scenario(cache))


@pytest.mark.servers
def test_async_write_back_flushes_and_closes_without_blocking_the_loop(redis_tier):
    async def scenario(cache: TieredCache) -> list[int]:
        ticks: list[int] = []

        async def ticker() -> None:  # runs only while the loop is free
            while True:
                ticks.append(1)
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        await cache.aset_many({f"k{i}": i for i in range(50)})
        assert await cache.aflush()
        assert redis_tier.get("k49").value == 49
        await cache.aset("last", 1)
        await cache.aclose()
        task.cancel()
        return ticks

    cache = TieredCache([MemoryTier(100), redis_tier], write="back", coherence=False)
    ticks = asyncio.run(scenario(cache))
    assert ticks  # the loop kept turning
    assert redis_tier.get("last").value == 1 and not cache._writeback.writer.is_alive()


def test_a_tier_keeps_its_own_timer_and_one_without_gets_the_caches(settings):
    own = RedisTier(prefix=f"{settings.key_prefix}tm{uuid.uuid4().hex[:8]}:", timer=lambda: 5.0)
    plain = MemoryTier(10)
    cache = TieredCache([plain, own], timer=lambda: 1.0, coherence=False)
    try:
        assert own.timer() == 5.0 and plain.timer() == 1.0
    finally:
        cache.close()


def test_locks_and_pubsub_are_capabilities_not_classes(settings):
    class Elsewhere(RedisTier):  # any tier declaring the capability serves, whatever its class
        name = "elsewhere"

    assert not MemoryTier.supports_locks and not MemoryTier.supports_pubsub
    with pytest.raises(CacheError, match="no locks") as caught:
        MemoryTier(10).lock("x")
    assert caught.value.tier == "memory/lru"
    tier = Elsewhere(prefix=f"{settings.key_prefix}cp{uuid.uuid4().hex[:8]}:")
    cache = TieredCache([MemoryTier(10), tier])
    try:
        assert cache._coherence is not None and cache._coherence.tier is tier
        with cache.lock("x", timeout=5):
            pass
    finally:
        cache.close()


def test_cache_errors_carry_key_and_tier():
    cache = TieredCache([MemoryTier(10, max_bytes=200)], coherence=False)
    with pytest.raises(CacheError, match="'big'") as caught:
        cache.set("big", "x" * 1000)
    assert (caught.value.key, caught.value.tier) == ("big", "memory/lru")
    with pytest.raises(CacheError, match="ttl") as caught:
        cache.set("neg", 1, ttl=-1)
    assert caught.value.key == "neg"


def test_a_flight_that_landed_between_a_miss_and_the_join_is_not_loaded_again():
    class SlowL2(MemoryTier):
        """A real memory tier whose read, in thread ``late``, answers only when released."""

        def __init__(self) -> None:
            super().__init__(100)
            self.reading, self.release = threading.Event(), threading.Event()

        def get(self, key):
            entry = super().get(key)
            if threading.current_thread().name == "late":
                self.reading.set()
                self.release.wait(10)
            return entry

    slow = SlowL2()
    cache = TieredCache([MemoryTier(100), slow], coherence=False)
    loads, out = [], []
    late = threading.Thread(
        name="late", target=lambda: out.append(cache.get_or_load("k", lambda: loads.append(1)))
    )
    late.start()
    assert slow.reading.wait(10)  # the late caller missed everywhere, and has not joined yet
    cache.get_or_load("k", lambda: loads.append(2) or "v")  # leads, stores, lands
    slow.release.set()
    late.join(10)
    assert loads == [2] and out == ["v"]
    cache.close()


@pytest.mark.servers
def test_async_writes_publish_invalidations_without_the_sync_client(redis_tier):
    """An async write's invalidation goes out through redis.asyncio, awaited: a PUBLISH on the
    sync client would hold the event loop for as long as Redis takes (a slow Redis once froze
    the loop 4.5 s of 6 that way). Another process-like cache still hears every kind.

    The tiers get 5 s socket timeouts: on a loaded CI runner sharing one Redis between two test
    workers, the default 0.5 s once expired, the breaker skipped the second write (as it
    should), and the reader rightly kept the first value; this test is about the messages."""
    mine = RedisTier(prefix=redis_tier.prefix, timeout=5.0)  # (the fixture's cleans up)
    other = RedisTier(prefix=redis_tier.prefix, timeout=5.0)
    writer = TieredCache([MemoryTier(100), mine], default_ttl=60)
    reader = TieredCache([MemoryTier(100), other], default_ttl=60)
    sync_publishes: list[tuple] = []
    real = mine.client.publish

    def spy(*args):
        sync_publishes.append(args)
        return real(*args)

    mine.client.publish = spy

    async def scenario() -> None:
        for cache in (writer, reader):
            assert await asyncio.to_thread(cache._coherence.connected.wait, 10)
        await writer.aset("k", 1, tags=["T"])
        assert reader.get("k") == 1  # now in the reader's L1 (or about to be dropped)
        await writer.aset("k", 2)  # the reader's L1 copy must be dropped by the message
        for _ in range(500):
            if reader.get("k") == 2:
                break
            await asyncio.sleep(0.01)
        assert reader.get("k") == 2
        await writer.adelete("k")
        await writer.aset_many({"m:1": 1})
        await writer.ainvalidate("m:*")
        await writer.ainvalidate_tags("T")
        await writer.aclose()

    try:
        asyncio.run(scenario())
    finally:
        reader.close()
        other.close()
    assert sync_publishes == []  # every invalidation went through the async client
