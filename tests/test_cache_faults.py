"""Cache faults on real servers: unreadable entries, a restarted or hung Redis, write-back through
an outage, event loops in many threads, and concurrent writers on one key (issue 13)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import struct
import threading
import time
import uuid

import pytest

from perflab import servers
from perflab.cache import DatabaseTier, MemoryTier, RedisTier, TieredCache
from perflab.settings import resolve

pytestmark = pytest.mark.servers

NEVER = float("nan")


def envelope(serializer_id: int, payload: bytes) -> bytes:
    return struct.pack(">2sBBd", b"PL", 1, serializer_id, NEVER) + payload


JSON_GARBAGE = {
    "tag_without_value": b'{"__perflab__": "tuple"}',
    "bad_decimal": b'{"__perflab__": "decimal", "v": "1.2.3"}',
    "deep_nesting": b"[" * 100_000 + b"]" * 100_000,
    "bad_base64": b'{"__perflab__": "bytes", "v": "@@@"}',
    "bad_dtype": b'{"__perflab__": "ndarray", "dtype": "nope", "v": []}',
    "unknown_tag": b'{"__perflab__": "mystery", "v": 1}',
    "not_json": b"\xff\xfe{",
}


@pytest.fixture
def prefix(settings):
    return f"{settings.key_prefix}f{uuid.uuid4().hex[:8]}:"


def test_undecodable_json_entries_are_counted_misses_and_deleted(prefix):
    tier = RedisTier(prefix=prefix)
    cache = TieredCache([MemoryTier(100), tier], coherence=False)
    try:
        for name, payload in JSON_GARBAGE.items():
            tier.client.set(prefix + name, envelope(1, payload))
        tier.client.set(prefix + "short", b"PL")  # truncated header
        tier.client.set(prefix + "foreign", b"written by someone else")
        bad = [*JSON_GARBAGE, "short", "foreign"]
        for name in bad:
            assert cache.get(name, "missing") == "missing", name
            assert tier.client.get(prefix + name) is None, name  # deleted, not read again
        stats = cache.stats()
        assert stats.loc["redis", "errors"] == len(bad)
        assert stats.loc["redis", "misses"] == len(bad)
    finally:
        cache.clear()
        cache.close()


def test_a_batch_read_keeps_the_good_entries_and_drops_the_bad(prefix):
    tier = RedisTier(prefix=prefix)
    cache = TieredCache([MemoryTier(100), tier], coherence=False)
    try:
        cache.set_many({"a": 1, "b": (2, 3)})
        cache.tiers[0].clear()
        tier.client.set(prefix + "bad", envelope(1, JSON_GARBAGE["tag_without_value"]))
        assert cache.get_many(["a", "bad", "b"]) == {"a": 1, "b": (2, 3)}
        assert tier.client.get(prefix + "bad") is None
        assert cache.stats().loc["redis", "errors"] == 1
    finally:
        cache.clear()
        cache.close()


def test_async_reads_of_undecodable_entries_are_misses(prefix):
    tier = RedisTier(prefix=prefix)
    cache = TieredCache([MemoryTier(100), tier], coherence=False)
    try:
        tier.client.set(prefix + "bad", envelope(1, JSON_GARBAGE["bad_decimal"]))
        tier.client.set(prefix + "bad2", envelope(1, JSON_GARBAGE["unknown_tag"]))
        assert asyncio.run(cache.aget("bad", "missing")) == "missing"
        assert asyncio.run(cache.aget_many(["bad2"])) == {}
        assert tier.client.get(prefix + "bad2") is None
        assert tier.client.get(prefix + "bad") is None
    finally:
        cache.clear()
        cache.close()


def test_msgpack_with_trailing_bytes_is_a_miss(prefix):
    pytest.importorskip("msgpack")
    import msgpack

    tier = RedisTier(prefix=prefix, serializer="msgpack")
    cache = TieredCache([tier], coherence=False)
    try:
        tier.client.set(prefix + "extra", envelope(2, msgpack.packb(1) + b"\x01"))
        tier.client.set(prefix + "cut", envelope(2, msgpack.packb("a long string")[:-3]))
        assert cache.get("extra", "missing") == "missing"
        assert cache.get("cut", "missing") == "missing"
        assert cache.get_many(["extra", "cut"]) == {}
        assert tier.client.get(prefix + "extra") is None
    finally:
        cache.clear()
        cache.close()


def test_undecodable_rows_in_the_database_are_misses(tmp_path):
    import sqlalchemy as sa

    tier = DatabaseTier(f"sqlite:///{tmp_path / 'c.db'}")
    cache = TieredCache([tier], coherence=False)
    try:
        with tier.engine.connect() as conn:
            conn.execute(
                sa.insert(tier.table).values(
                    key="bad", value=envelope(1, JSON_GARBAGE["deep_nesting"]), expires_at=None
                )
            )
        assert cache.get("bad", "missing") == "missing"
        with tier.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tier.table)).scalar() == 0
    finally:
        cache.close()


def test_a_users_dict_with_the_tag_key_round_trips(prefix):
    tier = RedisTier(prefix=prefix)
    cache = TieredCache([tier], coherence=False)
    try:
        value = {"__perflab__": "tuple", "v": 1, "nested": {"__perflab__": None}}
        cache.set("d", value)
        assert cache.get("d") == value
    finally:
        cache.clear()
        cache.close()


# --- a Redis of the test's own, to restart and to hang ----------------------------------------


def wait_for(condition, timeout: float = 15.0) -> bool:
    """Poll until ``condition()`` holds (an event is asserted, not a duration)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def own_redis(tmp_path):
    own = resolve({}, state_dir=tmp_path / "state")
    url = servers.start(own, database=False).redis_url
    yield own, url
    pid = redis_pid(own)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    servers.stop(own)


def redis_pid(own) -> int | None:
    """From the pid file: ``servers.status`` pings, and a stopped server doesn't answer."""
    try:
        return int((own.state_dir / "redis" / "redis.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


@pytest.mark.embedded
def test_invalidation_resumes_after_a_redis_restart(own_redis):
    own, url = own_redis
    a = TieredCache([MemoryTier(100), RedisTier(url, prefix="t:", timeout=0.3)])
    b = TieredCache([MemoryTier(100), RedisTier(url, prefix="t:", timeout=0.3)])
    try:
        a.set("price", 100)
        a.set("untouched", 1)
        assert a.get("price") == 100 and a.tiers[0].get("price") is not None
        servers.stop(own)
        servers.start(own, database=False)  # a restart: A's subscription is gone
        assert wait_for(a._coherence.connected.is_set)
        assert wait_for(lambda: a._coherence.resubscribed >= 1)
        # after the gap A's L1 is suspect and dropped, even for keys nobody rewrote
        assert a.tiers[0].get("untouched") is None
        assert wait_for(b._coherence.connected.is_set)
        b.set("price", 101)  # B writes after the restart
        assert wait_for(lambda: a.get("price") == 101)
        a.get("price")
        b.set("price", 102)  # and the resubscribed listener keeps working
        assert wait_for(lambda: a.tiers[0].get("price") is None or a.get("price") == 102)
        assert a.get("price") == 102
    finally:
        a.close()
        b.close()


@pytest.mark.embedded
def test_a_hung_redis_costs_one_timeout_not_one_per_write(own_redis):
    own, url = own_redis
    tier = RedisTier(url, prefix="h:", timeout=0.3)
    cache = TieredCache([MemoryTier(100), tier], default_ttl=60)
    calls = []
    real_publish = tier.client.publish

    def counting_publish(*args):
        calls.append(args)
        return real_publish(*args)

    tier.client.publish = counting_publish  # the real client, counted
    try:
        cache.set("warm", 0)
        assert calls  # coherence publishes through the client
        pid = redis_pid(own)
        os.kill(pid, signal.SIGSTOP)
        calls.clear()
        for i in range(10):
            assert cache.get_or_load(f"miss{i}", lambda i=i: i) == i  # reads fall through
        # the first operation timed out and opened the breaker; no PUBLISH went to the hung
        # server after that (each would have cost a whole socket timeout)
        assert calls == []
        assert cache.stats().loc["redis", "errors"] >= 1
        os.kill(pid, signal.SIGCONT)

        def republished() -> bool:
            cache.set("after", 1)  # a write lets the breaker see Redis again
            return bool(calls)

        assert wait_for(republished)  # kept invalidations are sent once Redis answers
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        cache.close()


@pytest.mark.embedded
def test_write_back_through_an_outage_has_a_close_deadline_and_logs_once(own_redis, caplog):
    own, url = own_redis
    cache = TieredCache(
        [MemoryTier(1000), RedisTier(url, prefix="w:", timeout=0.2)],
        write="back",
        write_queue=20,
        write_block=0.05,
        close_timeout=1.0,
        coherence=False,
    )
    closed = False
    try:
        cache.set("before", 1)
        assert cache.flush()
        servers.stop(own)
        for i in range(60):  # more than the queue holds: the rest is dropped, not waited for
            cache.set(f"k{i}", i)
        assert cache.get("k59") == 59  # L1 has every write
        assert cache.write_back_dropped > 0
        full = [r for r in caplog.records if "queue full" in r.getMessage()]
        assert len(full) == 1  # one line per stall, not per key
        per_key = [r for r in caplog.records if "k1" in r.getMessage()]
        assert per_key == []
        assert not cache.flush(timeout=0.2)  # bounded: Redis is still down
        cache.close()  # returns with Redis still down: the deadline, not the outage, ends it
        closed = True
        assert (
            not cache._writeback.writer.is_alive()
        )  # the writer gave up at the deadline and stopped
        assert cache.write_back_failures + cache.write_back_dropped == 60  # all counted
        assert cache.write_back_dropped > 0 and cache.write_back_failures > 0
        outage = [r for r in caplog.records if r.getMessage().startswith("cache tier redis")]
        assert len(outage) == 1
    finally:
        if not closed:
            cache.close()


@pytest.mark.embedded
def test_write_back_resumes_in_order_after_a_short_outage(own_redis):
    own, url = own_redis
    tier = RedisTier(url, prefix="r:", timeout=0.2)
    cache = TieredCache([MemoryTier(1000), tier], write="back", coherence=False)
    try:
        servers.stop(own)
        for v in range(5):
            cache.set("k", v)  # queued while Redis is down
        cache.delete("gone")
        servers.start(own, database=False)
        assert cache.flush(timeout=60)
        assert cache.write_back_failures == 0
        reader = TieredCache([RedisTier(url, prefix="r:")], coherence=False)
        assert reader.get("k") == 4  # the last write, nothing lost
        reader.close()
    finally:
        cache.close()


# --- event loops in many threads; sync and async callers ---------------------------------------


def test_aget_or_load_with_one_event_loop_per_thread(prefix):
    cache = TieredCache([MemoryTier(1000), RedisTier(prefix=prefix)], coherence=False)
    loads: list[str] = []
    gate = threading.Barrier(4)

    async def loader_for(key: str):
        loads.append(key)
        await asyncio.sleep(0.05)
        return key.upper()

    async def tasks() -> list:
        gate.wait()  # all four loops start together
        keys = [f"k{i % 5}" for i in range(25)]
        return await asyncio.gather(
            *(cache.aget_or_load(k, lambda k=k: loader_for(k)) for k in keys),
            return_exceptions=True,
        )

    results: list = []
    threads = [
        threading.Thread(target=lambda: results.extend(asyncio.run(tasks()))) for _ in range(4)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        assert len(results) == 100 and all(r == r.upper() for r in results)
        assert sorted(loads) == sorted(set(loads))  # each key loaded once, in all loops together
    finally:
        cache.clear()
        cache.close()


def test_a_sync_and_an_async_caller_of_one_key_load_once(prefix):
    cache = TieredCache([MemoryTier(100), RedisTier(prefix=prefix)], coherence=False)
    release = threading.Event()
    loads: list[str] = []

    def slow_loader():
        loads.append("sync")
        release.wait(30)
        return "value"

    async def async_loader():
        loads.append("async")
        return "other"

    got: dict[str, object] = {}
    sync = threading.Thread(target=lambda: got.update(sync=cache.get_or_load("k", slow_loader)))
    try:
        sync.start()
        assert wait_for(lambda: "k" in cache._loader.flights)
        flight = cache._loader.flights["k"]
        waiter = threading.Thread(
            target=lambda: got.update(aio=asyncio.run(cache.aget_or_load("k", async_loader)))
        )
        waiter.start()
        assert wait_for(lambda: len(flight._waiters) == 1)  # the task waits on the sync load
        release.set()
        sync.join(30)
        waiter.join(30)
        assert got == {"sync": "value", "aio": "value"} and loads == ["sync"]
    finally:
        release.set()
        cache.clear()
        cache.close()


# --- concurrent writers on one key: L1 and Redis converge --------------------------------------


class GatedRedisTier(RedisTier):
    """A real RedisTier that can hold one call after Redis answered, to force an interleaving."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hold: str | None = None  # "set" or "get"
        self.reached = threading.Event()
        self.release = threading.Event()

    def _pause(self, method: str) -> None:
        if self.hold == method:
            self.hold = None
            self.reached.set()
            self.release.wait(30)

    def set(self, key, entry, tags=(), data=None):
        super().set(key, entry, tags, data)
        self._pause("set")

    def get(self, key):
        entry = super().get(key)
        self._pause("get")
        return entry


def agree(cache: TieredCache, tier: RedisTier, key: str) -> bool:
    local, shared = cache.tiers[0].get(key), tier.get(key)
    return local is None or (shared is not None and local.value == shared.value)


def test_a_delete_during_a_set_leaves_the_tiers_agreeing(prefix):
    tier = GatedRedisTier(prefix=prefix)
    cache = TieredCache([MemoryTier(100), tier], coherence=False)
    try:
        tier.hold = "set"
        writer = threading.Thread(target=cache.set, args=("k", "v1"))
        writer.start()
        assert tier.reached.wait(30)  # v1 is in Redis, not yet in L1
        cache.delete("k")  # removes it from both
        tier.release.set()
        writer.join(30)
        assert agree(cache, tier, "k")
    finally:
        tier.release.set()
        cache.clear()
        cache.close()


def test_two_sets_racing_leave_the_tiers_agreeing(prefix):
    tier = GatedRedisTier(prefix=prefix)
    cache = TieredCache([MemoryTier(100), tier], coherence=False)
    try:
        tier.hold = "set"
        first = threading.Thread(target=cache.set, args=("k", "v1"))
        first.start()
        assert tier.reached.wait(30)
        cache.set("k", "v2")  # Redis and L1: v2; then the first writer resumes
        tier.release.set()
        first.join(30)
        assert agree(cache, tier, "k")
    finally:
        tier.release.set()
        cache.clear()
        cache.close()


def test_a_back_fill_never_overwrites_a_newer_write(prefix):
    tier = GatedRedisTier(prefix=prefix)
    cache = TieredCache([MemoryTier(100), tier], coherence=False)
    try:
        cache.set("k", "old")
        cache.tiers[0].clear()
        tier.hold = "get"
        reader = threading.Thread(target=cache.get, args=("k",))
        reader.start()
        assert tier.reached.wait(30)  # the reader holds "old" from Redis
        cache.set("k", "new")
        tier.release.set()
        reader.join(30)
        assert agree(cache, tier, "k") and cache.get("k") == "new"
    finally:
        tier.release.set()
        cache.clear()
        cache.close()


def test_many_threads_on_shared_keys_converge(prefix):
    tier = RedisTier(prefix=prefix)
    cache = TieredCache([MemoryTier(100), tier], coherence=False)
    keys = ["a", "b", "c"]

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for n in range(150):
            k = rng.choice(keys)
            op = rng.random()
            if op < 0.4:
                cache.set(k, (seed, n))
            elif op < 0.6:
                cache.delete(k)
            else:
                cache.get(k)

    try:
        for round_ in range(5):
            threads = [threading.Thread(target=work, args=(round_ * 8 + t,)) for t in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert all(agree(cache, tier, k) for k in keys), round_
    finally:
        cache.clear()
        cache.close()


# --- the event loop while Redis hangs (issue 24) -----------------------------------------------


async def longest_gap_while(work, seconds: float) -> tuple[float, int]:
    """Run ``work(stop)`` tasks beside a ticker for ``seconds``; the ticker's longest gap
    between wake-ups (how long the loop was unresponsive) and the operations done."""
    stop, gaps, done = asyncio.Event(), [], [0]

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tasks = [asyncio.create_task(ticker())] + [
        asyncio.create_task(work(stop, n, done)) for n in range(10)
    ]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return max(gaps), done[0]


@pytest.mark.embedded
@pytest.mark.parametrize("write", ["through", "back"])
def test_a_hung_redis_never_stalls_the_event_loop(own_redis, write):
    own, url = own_redis
    # a blocking call would hold the loop for a whole socket timeout (1 s), a full write-back
    # queue for write_block (1 s): a gap of a quarter of that can only come from elsewhere
    cache = TieredCache(
        [MemoryTier(1000), RedisTier(url, prefix="loop:", timeout=1.0)],
        default_ttl=60,
        write=write,
        write_queue=8,
        write_block=1.0,
    )

    # with write-back, invalidations wait for the queue to reach Redis first (close_timeout)
    steps = range(6) if write == "through" else (0, 1, 2, 5)

    async def work(stop: asyncio.Event, n: int, done: list[int]) -> None:
        rng = random.Random(n)
        while not stop.is_set():
            key = f"k{rng.randrange(50)}"
            step = steps[done[0] % len(steps)]
            if step == 0:
                await cache.aset(key, n)
            elif step == 1:
                await cache.adelete(key)
            elif step == 2:
                await cache.aset_many({f"m{n}:{i}": i for i in range(3)})
            elif step == 3:
                await cache.ainvalidate(f"m{n}:*")
            elif step == 4:
                await cache.ainvalidate_tags(f"t{n}")
            else:
                await cache.aget(key)
            done[0] += 1
            await asyncio.sleep(0.002)

    async def scenario() -> tuple[float, int]:
        await cache.aset("warm", 1)
        os.kill(pid, signal.SIGSTOP)
        try:
            return await longest_gap_while(work, 3.0)
        finally:
            os.kill(pid, signal.SIGCONT)

    pid = redis_pid(own)
    try:
        gap, done = asyncio.run(scenario())
        assert gap < 0.25, f"the event loop stalled {gap:.2f} s while Redis was hung"
        assert cache.stats().loc["redis", "errors"] >= 1  # it was hung, and seen to be
        if write == "through":
            assert done > 100  # the writes went on (to L1) while Redis was hung
        else:  # the queue filled, writes waited for room (off the loop), then were dropped
            assert cache.write_back_dropped > 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        cache.close()
