"""The multi-tier cache: L1 memory, L2 Redis, L3 database, chained by ``TieredCache``.

Import from here only; the modules behind these names are the package's own business.
"""

from perflab.cache.database import DatabaseTier
from perflab.cache.entry import CorruptEntry, Entry, pack, unpack
from perflab.cache.kept_connection import KeptConnection
from perflab.cache.memory import POLICIES, MemoryTier
from perflab.cache.redis_tier import RedisTier
from perflab.cache.serializers import JsonSerializer, MsgpackSerializer, PickleSerializer
from perflab.cache.simulate import (
    SIMULATED,
    belady_hit_ratio,
    policy_hit_ratio,
    replay_hit_ratio,
    s3fifo_hit_ratio,
    shifting_trace,
    sieve_hit_ratio,
    zipf_trace,
)
from perflab.cache.sizing import (
    advice,
    best_policy,
    capacity_for,
    default_capacities,
    hit_ratio_curve,
    smallest_capacity,
)
from perflab.cache.tier import Subscription, Tier, TierUnavailable
from perflab.cache.tiered import TieredCache
from perflab.cache.traces import (
    MAX_MONITOR_SECONDS,
    KeyTrace,
    load_trace,
    monitor_keys,
    read_trace_file,
)
from perflab.cache.urls import tier_from_url

__all__ = [
    "MAX_MONITOR_SECONDS",
    "POLICIES",
    "SIMULATED",
    "CorruptEntry",
    "DatabaseTier",
    "Entry",
    "JsonSerializer",
    "KeptConnection",
    "KeyTrace",
    "MemoryTier",
    "MsgpackSerializer",
    "PickleSerializer",
    "RedisTier",
    "Subscription",
    "Tier",
    "TierUnavailable",
    "TieredCache",
    "advice",
    "belady_hit_ratio",
    "best_policy",
    "capacity_for",
    "default_capacities",
    "hit_ratio_curve",
    "load_trace",
    "monitor_keys",
    "pack",
    "policy_hit_ratio",
    "read_trace_file",
    "replay_hit_ratio",
    "s3fifo_hit_ratio",
    "shifting_trace",
    "sieve_hit_ratio",
    "smallest_capacity",
    "tier_from_url",
    "unpack",
    "zipf_trace",
]
