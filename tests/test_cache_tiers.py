"""One contract, every tier, real servers (as cachetools runs one mixin over every cache)."""

from __future__ import annotations

import asyncio

import pytest

from perflab.cache import Entry

from .cache_fixtures import TIER_KINDS, cleanup, make_tier, marks


@pytest.fixture(params=[pytest.param(k, marks=marks(k)) for k in TIER_KINDS])
def tier(request, settings, tmp_path):
    made: list = []
    yield make_tier(request.param, settings, tmp_path, made)
    cleanup(made)


def test_missing_key_is_none(tier):
    assert tier.get("nope") is None


def test_set_then_get_keeps_value_and_expiry(tier):
    tier.timer = lambda: 1000.0
    tier.set("k", Entry({"a": [1, 2]}, expires_at=1060.5))
    got = tier.get("k")
    assert got.value == {"a": [1, 2]} and got.expires_at == 1060.5
    tier.set("forever", Entry("x"))
    assert tier.get("forever").expires_at is None


def test_overwrite(tier):
    tier.set("k", Entry(1))
    tier.set("k", Entry(2))
    assert tier.get("k").value == 2


def test_delete_says_whether_it_was_there(tier):
    tier.set("k", Entry(1))
    assert tier.delete("k") is True
    assert tier.delete("k") is False
    assert tier.get("k") is None


def test_get_many_and_set_many(tier):
    tier.set_many({"a": Entry(1), "b": Entry(2), "c": Entry(3)})
    assert {k: e.value for k, e in tier.get_many(["a", "c", "zz"]).items()} == {"a": 1, "c": 3}
    assert tier.get_many([]) == {}


def test_delete_pattern_matches_globs_only(tier):
    for key in ("sig:AAPL", "sig:MSFT", "px:AAPL", "sig%_literal", "sigX"):
        tier.set(key, Entry(key))
    assert tier.delete_pattern("sig:*") == 2
    assert tier.get("px:AAPL") is not None
    assert tier.get("sig%_literal") is not None and tier.get("sigX") is not None
    assert tier.delete_pattern("sig%_*") == 1  # % and _ are literal, not SQL wildcards
    assert tier.get("sigX") is not None


def test_delete_tags_returns_the_keys(tier):
    tier.set("a", Entry(1), tags=("AAPL", "tech"))
    tier.set("b", Entry(2), tags=("MSFT",))
    tier.set("c", Entry(3))
    assert sorted(tier.delete_tags(["AAPL", "nope"])) == ["a"]
    assert tier.get("a") is None and tier.get("b") is not None
    assert tier.delete_tags(["AAPL"]) == []


def test_clear(tier):
    tier.set_many({"a": Entry(1), "b": Entry(2)})
    tier.clear()
    assert tier.get_many(["a", "b"]) == {}


def test_odd_keys(tier):
    for key in ("with space", "ünïcødé", "a*b?c[d]", "x" * 180, ""):
        tier.set(key, Entry(key))
        assert tier.get(key).value == key


def test_async_contract(tier):
    async def scenario() -> None:
        await tier.aset("k", Entry([1]))
        assert (await tier.aget("k")).value == [1]
        assert (await tier.aget_many(["k", "z"])).keys() == {"k"}
        assert await tier.adelete("k") is True
        assert await tier.aget("k") is None

    asyncio.run(scenario())


# --- L3 expiry (issue 24) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=marks(k)) for k in ("postgresql", "sqlite")]
)
def test_expired_rows_are_purged_so_the_table_stays_bounded(kind, settings, tmp_path):
    from perflab.cache import MemoryTier, TieredCache

    made: list = []
    tier = make_tier(kind, settings, tmp_path, made)
    now = [1_000.0]
    cache = TieredCache([MemoryTier(100), tier], timer=lambda: now[0], coherence=False)
    try:
        for batch in range(40):  # 40 x 250 new keys, TTL 1 s, 0.3 s apart
            cache.set_many({f"b{batch}:{i}": i for i in range(250)}, ttl=1.0)
            now[0] += 0.3
        live = 3 * 250  # the last three batches have not expired
        rows = tier.size()[0]
        assert rows <= live + 2 * tier.purge_every  # without purging: all 10,000
        assert cache.stats().loc["database", "expired"] == tier.purged == 10_000 - rows
        assert [cache.get(f"b{b}:0") for b in (37, 38, 39)] == [0, 0, 0]  # live: untouched
        now[0] += 2.0
        assert tier.purge_expired() == rows  # by hand: every expired row, at once
        assert tier.size()[0] == 0
    finally:
        cache.close()
        cleanup(made)
