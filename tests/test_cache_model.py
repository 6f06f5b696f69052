"""The tiered cache against a dict model (hypothesis state machine), and the L1 policies'
defining behaviours."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from perflab.cache import DatabaseTier, Entry, MemoryTier, RedisTier, TieredCache

KEYS = st.sampled_from([f"k{i}" for i in range(12)])
VALUES = st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))
TTLS = st.sampled_from([None, 5.0, 50.0])


class CacheModel(RuleBasedStateMachine):
    """Whatever the interleaving of writes, deletes, time and L1 evictions, a read returns what a
    plain dict with expiry times would."""

    prefix_root = "perflab-model"
    sqlite_dir = "/tmp"

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.model: dict[str, tuple[object, float | None]] = {}
        self.redis = RedisTier(prefix=f"{self.prefix_root}{uuid.uuid4().hex[:8]}:")
        self.db = DatabaseTier(f"sqlite:///{self.sqlite_dir}/model-{uuid.uuid4().hex[:8]}.db")
        self.cache = TieredCache(
            [MemoryTier(4, "lru"), self.redis, self.db],
            default_ttl=None,
            timer=lambda: self.now,
            coherence=False,
        )

    def expected(self, key: str) -> object:
        value, expires = self.model.get(key, (None, None))
        return None if expires is not None and self.now >= expires else value

    @rule(key=KEYS, value=VALUES, ttl=TTLS)
    def set(self, key, value, ttl):
        self.cache.set(key, value, ttl=ttl)
        self.model[key] = (value, None if ttl is None else self.now + ttl)

    @rule(key=KEYS)
    def get(self, key):
        assert self.cache.get(key) == self.expected(key)

    @rule(keys=st.lists(KEYS, max_size=5))
    def get_many(self, keys):
        expected = {k: self.expected(k) for k in keys if self.expected(k) is not None}
        got = self.cache.get_many(keys)
        assert {k: v for k, v in got.items() if v is not None} == expected

    @rule(key=KEYS)
    def delete(self, key):
        self.cache.delete(key)
        self.model.pop(key, None)

    @rule(seconds=st.sampled_from([1.0, 4.9, 5.0, 20.0]))
    def advance(self, seconds):
        self.now += seconds

    @rule()
    def lose_l1(self):
        self.cache.tiers[0].clear()

    @rule()
    def lose_l2(self):
        self.redis.clear()

    @invariant()
    def l1_never_holds_more_than_its_bound(self):
        assert len(self.cache.tiers[0]._store) <= 4

    def teardown(self):
        self.redis.clear()
        self.cache.close()


@pytest.mark.servers
def test_cache_behaves_like_a_dict_with_expiry(settings, tmp_path):
    CacheModel.prefix_root = f"{settings.key_prefix}model"
    CacheModel.sqlite_dir = str(tmp_path)
    run = CacheModel.TestCase
    run.settings = hsettings(max_examples=25, stateful_step_count=25, deadline=None)
    run().runTest()


# --- policies ----------


def fill(tier: MemoryTier, keys) -> None:
    for k in keys:
        tier.set(k, Entry(k))


def test_lru_evicts_the_least_recently_used():
    tier = MemoryTier(3, "lru")
    fill(tier, "abc")
    tier.get("a")
    tier.set("d", Entry("d"))
    assert tier.get("b") is None and all(tier.get(k) for k in "acd")
    assert tier.evictions == 1


def test_lfu_evicts_the_least_frequently_used():
    tier = MemoryTier(3, "lfu")
    fill(tier, "abc")
    for _ in range(3):
        tier.get("a")
        tier.get("c")
    tier.set("d", Entry("d"))
    assert tier.get("b") is None and all(tier.get(k) for k in "acd")


def test_fifo_evicts_the_oldest_whatever_its_use():
    tier = MemoryTier(3, "fifo")
    fill(tier, "abc")
    for _ in range(5):
        tier.get("a")
    tier.set("d", Entry("d"))
    assert tier.get("a") is None and all(tier.get(k) for k in "bcd")


def test_tinylfu_keeps_hot_keys_through_a_scan_where_lru_does_not():
    hot = [f"hot{i}" for i in range(50)]
    survivors = {}
    for policy in ("tinylfu", "lru"):
        tier = MemoryTier(100, policy)
        for _ in range(20):
            for k in hot:
                if tier.get(k) is None:
                    tier.set(k, Entry(k))
        for i in range(1000):  # a scan of one-hit wonders
            tier.set(f"scan{i}", Entry(i))
        survivors[policy] = sum(tier.get(k) is not None for k in hot)
    assert survivors["lru"] == 0
    assert survivors["tinylfu"] >= 45


def test_byte_bound_evicts_by_size():
    tier = MemoryTier(1000, "lru", max_bytes=2000)
    fill(tier, [f"k{i}" + "x" * 200 for i in range(40)])
    items, size = tier.size()
    assert size <= 2000 and items < 40 and tier.evictions == 40 - items


def test_belady_by_hand_and_as_a_ceiling():
    import numpy as np

    from perflab.cache.simulate import belady_hit_ratio, policy_hit_ratio, zipf_trace

    # capacity 2 over 1 2 3 1 2 4 1 2 3: keep 1 and 2, decline 3 and 4 -> 4 hits of 9
    assert belady_hit_ratio(np.array([1, 2, 3, 1, 2, 4, 1, 2, 3]), 2) == pytest.approx(4 / 9)
    trace = zipf_trace(500, 5000, 1.0, seed=3)
    best = belady_hit_ratio(trace, 25)
    for policy in ("lru", "lfu", "fifo", "tinylfu"):
        assert 0 < policy_hit_ratio(trace, 25, policy) <= best
