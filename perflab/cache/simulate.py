"""Hit ratios offline: Zipf and shifting-popularity traces, each L1 policy replayed on them, and
Belady's optimum (evict the key whose next use is furthest away) as the ceiling."""

from __future__ import annotations

import heapq

import numpy as np

from perflab.cache.entry import Entry
from perflab.cache.memory import MemoryTier

__all__ = ["belady_hit_ratio", "policy_hit_ratio", "shifting_trace", "zipf_trace"]


def zipf_trace(n_keys: int, length: int, alpha: float, seed: int = 0) -> np.ndarray:
    """``length`` requests over ``n_keys`` keys, P(rank r) ∝ 1 / r**alpha, ranks shuffled."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_keys + 1) ** alpha
    ranks = rng.choice(n_keys, size=length, p=weights / weights.sum())
    return rng.permutation(n_keys)[ranks]


def shifting_trace(n_keys: int, length: int, alpha: float, seed: int = 0) -> np.ndarray:
    """A Zipf trace whose popular keys change completely halfway through (LFU's weak spot)."""
    first = zipf_trace(n_keys, length // 2, alpha, seed)
    second = zipf_trace(n_keys, length - length // 2, alpha, seed + 1) + n_keys
    return np.concatenate([first, second])


def belady_hit_ratio(trace: np.ndarray, capacity: int) -> float:
    """The best hit ratio any policy could reach with ``capacity`` entries (exact, offline):
    on a miss, keep the ``capacity`` keys whose next use comes soonest, the newcomer included
    (so it may be declined, as an admission policy like TinyLFU's may)."""
    trace = np.asarray(trace)
    n = trace.size
    next_use = np.empty(n, dtype=np.int64)
    last: dict[int, int] = {}
    for i in range(n - 1, -1, -1):
        next_use[i] = last.get(int(trace[i]), n + i)  # never again: beyond the end, distinct
        last[int(trace[i])] = i
    cached: dict[int, int] = {}  # key -> its next use
    heap: list[tuple[int, int]] = []  # (-next use, key), stale entries skipped lazily
    hits = 0
    for i in range(n):
        key, upcoming = int(trace[i]), int(next_use[i])
        if key in cached:
            hits += 1
        elif len(cached) >= capacity:
            while -heap[0][0] != cached.get(heap[0][1]):  # drop stale heap entries
                heapq.heappop(heap)
            if -heap[0][0] <= upcoming:
                continue  # the newcomer is needed last: don't admit it (bypass)
            del cached[heapq.heappop(heap)[1]]
        cached[key] = upcoming
        heapq.heappush(heap, (-upcoming, key))
    return hits / n


def policy_hit_ratio(trace: np.ndarray, capacity: int, policy: str) -> float:
    """Replay ``trace`` on a real MemoryTier: read, and on a miss, store."""
    tier = MemoryTier(capacity, policy)
    store_get, entry = tier.get, Entry(None)
    hits = 0
    for key in map(str, trace.tolist()):
        if store_get(key) is None:
            tier.set(key, entry)
        else:
            hits += 1
    return hits / len(trace)
