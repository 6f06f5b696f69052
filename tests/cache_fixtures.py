"""Tier factories for the cache tests: every tier on real servers, each test in its own key
prefix / table, cleaned up afterwards."""

from __future__ import annotations

import uuid

import pytest

from perflab.cache import DatabaseTier, MemoryTier, RedisTier

TIER_KINDS = ["lru", "lfu", "fifo", "tinylfu", "redis", "postgresql", "sqlite"]
SHARED_KINDS = ["redis", "postgresql", "sqlite"]
# Socket timeout of the tiers on the shared system Redis in tests that are not about timeouts:
# two test workers and a loaded runner can stall a reply past the default 0.5 s, and a write
# skipped by the breaker would fail a test about something else.
LOADED = 5.0


def make_tier(kind: str, settings, tmp_path, made: list):
    if kind in ("lru", "lfu", "fifo", "tinylfu"):
        tier = MemoryTier(1000, kind)
    elif kind == "redis":
        tier = RedisTier(prefix=f"{settings.key_prefix}t{uuid.uuid4().hex[:8]}:", timeout=LOADED)
    elif kind == "postgresql":
        tier = DatabaseTier(table=f"cache_{uuid.uuid4().hex[:8]}")
    else:
        tier = DatabaseTier(
            f"sqlite:///{tmp_path / 'cache.db'}", table=f"cache_{uuid.uuid4().hex[:8]}"
        )
    made.append(tier)
    return tier


def cleanup(tiers: list) -> None:
    for tier in tiers:
        if isinstance(tier, RedisTier):
            tier.clear()
            tier.client.delete(f"{tier.prefix}__invalidate__")
        elif isinstance(tier, DatabaseTier):
            tier.drop()
        tier.close()


def marks(kind: str):
    return [pytest.mark.servers] if kind in ("redis", "postgresql") else []
