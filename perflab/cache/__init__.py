"""The multi-tier cache: L1 memory, L2 Redis, L3 database, chained by ``TieredCache``."""

from perflab.cache.database import DatabaseTier
from perflab.cache.entry import CorruptEntry, Entry
from perflab.cache.kept import KeptConnection
from perflab.cache.memory import POLICIES, MemoryTier
from perflab.cache.redis_tier import RedisTier
from perflab.cache.serializers import JsonSerializer, MsgpackSerializer, PickleSerializer
from perflab.cache.tier import Tier, TierUnavailable
from perflab.cache.tiered import TieredCache
from perflab.cache.urls import tier_from_url

__all__ = [
    "POLICIES",
    "CorruptEntry",
    "DatabaseTier",
    "Entry",
    "JsonSerializer",
    "KeptConnection",
    "MemoryTier",
    "MsgpackSerializer",
    "PickleSerializer",
    "RedisTier",
    "Tier",
    "TierUnavailable",
    "TieredCache",
    "tier_from_url",
]
