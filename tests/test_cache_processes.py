"""The cache across real processes and through a real outage."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from perflab import servers
from perflab.cache import DatabaseTier, MemoryTier, RedisTier, TieredCache
from perflab.settings import resolve

pytestmark = pytest.mark.servers


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def wait_for(condition, timeout: float = 10.0) -> bool:
    """Poll until ``condition()`` holds (an event, not a duration, is what's asserted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_write_in_another_process_drops_our_l1_copy(settings):
    prefix = f"{settings.key_prefix}coh{uuid.uuid4().hex[:8]}:"
    cache = TieredCache([MemoryTier(100), RedisTier(prefix=prefix)], default_ttl=300)
    try:
        cache.set("price", 100)
        cache.set("other", 1)
        cache.set("sig:a", 1)
        assert cache.tiers[0].get("price") is not None
        done = python(
            f"""
            from perflab.cache import MemoryTier, RedisTier, TieredCache
            c = TieredCache([MemoryTier(100), RedisTier(prefix={prefix!r})], default_ttl=300)
            c.set("price", 101)
            c.invalidate("sig:*")
            c.close()
            """
        )
        assert done.returncode == 0, done.stderr
        assert wait_for(lambda: cache.tiers[0].get("price") is None)  # our stale copy dropped
        assert wait_for(lambda: cache.tiers[0].get("sig:a") is None)
        assert cache.get("price") == 101  # and the next read sees the new value
        assert cache.tiers[0].get("other") is not None  # nothing else was touched
    finally:
        cache.clear()
        cache.close()


def test_lock_true_loads_once_across_processes(settings):
    prefix = f"{settings.key_prefix}lck{uuid.uuid4().hex[:8]}:"
    counter = f"{prefix}loads"
    code = f"""
        import time
        from perflab.cache import MemoryTier, RedisTier, TieredCache
        tier = RedisTier(prefix={prefix!r})
        c = TieredCache([MemoryTier(10), tier], default_ttl=60)
        def loader():
            tier.client.incr({counter!r})
            time.sleep(0.5)
            return "loaded"
        print(c.get_or_load("shared", loader, lock=True))
        c.close()
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    tier = RedisTier(prefix=prefix)
    try:
        assert outputs == ["loaded"] * 4
        assert int(tier.client.get(counter)) == 1
    finally:
        tier.client.delete(counter)
        tier.clear()
        tier.close()


@pytest.mark.embedded
def test_redis_outage_reads_fall_through_and_recovery_follows(tmp_path, caplog):
    own = resolve({}, state_dir=tmp_path / "state")
    url = servers.start(own, database=False).redis_url
    cache = TieredCache(
        [
            MemoryTier(100),
            RedisTier(url, prefix="t:", timeout=0.2),
            DatabaseTier(f"sqlite:///{tmp_path / 'l3.db'}"),
        ],
        default_ttl=300,
        coherence=False,
    )
    try:
        cache.set_many({f"k{i}": i for i in range(20)})
        servers.stop(own)  # Redis is gone
        cache.tiers[0].clear()
        assert [cache.get(f"k{i}") for i in range(20)] == list(range(20))  # from the database
        cache.set("during", "outage")  # written to L1 and L3; Redis counted as failed
        assert cache.get("during") == "outage"
        stats = cache.stats()
        assert stats.loc["redis", "errors"] >= 1
        outage_logs = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(outage_logs) == 1  # logged once, not per operation

        servers.start(own, database=False)  # back (empty: embedded Redis keeps nothing)

        def redis_used_again() -> bool:
            cache.set("after", "recovery")
            return cache.tiers[1].client.get("t:after") is not None

        assert wait_for(redis_used_again, timeout=60)
    finally:
        cache.close()
        servers.stop(own)


def test_write_back_is_flushed_at_interpreter_exit(settings):
    prefix = f"{settings.key_prefix}wb{uuid.uuid4().hex[:8]}:"
    done = python(
        f"""
        from perflab.cache import MemoryTier, RedisTier, TieredCache
        c = TieredCache([MemoryTier(100), RedisTier(prefix={prefix!r})], write="back")
        for i in range(300):
            c.set(f"k{{i}}", i)
        # no close(): the interpreter exits with writes still queued
        """
    )
    assert done.returncode == 0, done.stderr
    tier = RedisTier(prefix=prefix)
    try:
        found = TieredCache([tier], coherence=False).get_many([f"k{i}" for i in range(300)])
        assert len(found) == 300 and found["k299"] == 299
    finally:
        tier.clear()
        tier.close()
