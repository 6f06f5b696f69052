"""The multi-tier cache: L1 memory, L2 Redis, L3 database, chained by ``TieredCache``.

Import from here only; the modules behind these names are the package's own business.
"""

from perflab.cache.database import DatabaseTier
from perflab.cache.entry import CorruptEntry, Entry, pack, unpack
from perflab.cache.kept import KeptConnection
from perflab.cache.memory import POLICIES, MemoryTier
from perflab.cache.redis_tier import RedisTier
from perflab.cache.serializers import JsonSerializer, MsgpackSerializer, PickleSerializer
from perflab.cache.simulate import belady_hit_ratio, policy_hit_ratio, shifting_trace, zipf_trace
from perflab.cache.tier import Subscription, Tier, TierUnavailable
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
    "Subscription",
    "Tier",
    "TierUnavailable",
    "TieredCache",
    "belady_hit_ratio",
    "pack",
    "policy_hit_ratio",
    "shifting_trace",
    "tier_from_url",
    "unpack",
    "zipf_trace",
]
