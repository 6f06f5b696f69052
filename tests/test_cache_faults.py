"""Cache faults on real servers: unreadable entries, a restarted or hung Redis, write-back through
an outage, event loops in many threads, and concurrent writers on one key (issue 13)."""

from __future__ import annotations

import asyncio
import struct
import uuid

import pytest

from perflab.cache import DatabaseTier, MemoryTier, RedisTier, TieredCache

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
