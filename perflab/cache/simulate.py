"""Hit ratios offline: Zipf and shifting-popularity traces, each L1 policy replayed on them, and
Belady's optimum (evict the key whose next use is furthest away) as the ceiling."""

from __future__ import annotations

import heapq

import numpy as np

from perflab.cache.entry import Entry
from perflab.cache.memory import POLICIES, MemoryTier
from perflab.errors import CacheError

__all__ = [
    "SIMULATED",
    "belady_hit_ratio",
    "policy_hit_ratio",
    "replay_hit_ratio",
    "s3fifo_hit_ratio",
    "shifting_trace",
    "sieve_hit_ratio",
    "zipf_trace",
]


# every policy a replay can use: the L1 policies (replayed on a real MemoryTier) and two the L1
# does not offer, simulated here (validated against libCacheSim in the tests)
SIMULATED = (*POLICIES, "sieve", "s3fifo")


def replay_hit_ratio(trace: np.ndarray, capacity: int, policy: str) -> float:
    """The hit ratio of ``policy`` (one of :data:`SIMULATED`, or ``belady``) on ``trace`` with
    room for ``capacity`` keys."""
    if policy == "sieve":
        return sieve_hit_ratio(trace, capacity)
    if policy == "s3fifo":
        return s3fifo_hit_ratio(trace, capacity)
    if policy == "belady":
        return belady_hit_ratio(trace, capacity)
    if policy not in POLICIES:
        raise CacheError(
            f"unknown policy {policy!r}; use one of {', '.join((*SIMULATED, 'belady'))}"
        )
    return policy_hit_ratio(trace, capacity, policy)


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
    _check_capacity(capacity)
    trace = np.asarray(trace)
    n = trace.size
    # next use of each request, vectorised: sort positions by key (stable keeps time order),
    # then each position's successor within its key's run is its next use
    order = np.argsort(trace, kind="stable")
    sorted_keys = trace[order]
    next_use = np.empty(n, dtype=np.int64)
    same = sorted_keys[1:] == sorted_keys[:-1]
    next_use[order[:-1]] = np.where(same, order[1:], n + order[:-1])
    if n:
        next_use[order[-1]] = n + order[-1]  # never again: beyond the end, distinct
    cached: dict[int, int] = {}  # key -> its next use
    heap: list[tuple[int, int]] = []  # (-next use, key), stale entries skipped lazily
    hits = 0
    for key, upcoming in zip(trace.tolist(), next_use.tolist(), strict=True):
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
    _check_capacity(capacity)
    tier = MemoryTier(capacity, policy)
    store_get, entry = tier.get, Entry(None)
    hits = 0
    for key in trace.tolist():  # int keys: the stores take any hashable, and str() costs
        if store_get(key) is None:
            tier.set(key, entry)
        else:
            hits += 1
    return hits / len(trace)


def sieve_hit_ratio(trace: np.ndarray, capacity: int) -> float:
    """SIEVE (Zhang et al., NSDI 2024): one FIFO queue with a visited bit per key; a hit sets
    the bit, and a hand walking from the oldest key to the newest clears set bits and evicts
    the first key whose bit is clear. New keys enter at the newest end."""
    _check_capacity(capacity)
    newer: dict[int, int | None] = {}  # key -> the next newer key (None at the newest end)
    older: dict[int, int | None] = {}  # key -> the next older key (None at the oldest end)
    visited: dict[int, bool] = {}
    oldest = newest = hand = None
    hits = 0
    for key in trace.tolist():
        if key in visited:
            hits += 1
            visited[key] = True
            continue
        if len(visited) >= capacity:
            start: int | None = oldest if hand is None else hand
            assert start is not None  # a full cache has an oldest key
            victim: int = start
            while visited[victim]:
                visited[victim] = False
                step = newer[victim]
                if step is None:  # past the newest end: round to the oldest
                    assert oldest is not None
                    step = oldest
                victim = step
            hand = newer[victim]
            before, after = older.pop(victim), newer.pop(victim)
            del visited[victim]
            if before is None:
                oldest = after
            else:
                newer[before] = after
            if after is None:
                newest = before
            else:
                older[after] = before
        visited[key] = False
        older[key], newer[key] = newest, None
        if newest is None:
            oldest = key
        else:
            newer[newest] = key
        newest = key
    return hits / len(trace)


def s3fifo_hit_ratio(
    trace: np.ndarray,
    capacity: int,
    *,
    small_ratio: float = 0.10,
    ghost_ratio: float = 0.90,
    move_to_main: int = 2,
) -> float:
    """S3-FIFO (Yang et al., SOSP 2023) as libCacheSim's ``S3FIFO`` configures it: a small FIFO
    (``small_ratio`` of the capacity) that new keys enter, a main FIFO with a 2-bit CLOCK
    counter, and a ghost FIFO of evicted keys (``ghost_ratio`` of the capacity, keys only).
    A key leaving the small queue moves to main after ``move_to_main`` hits there, otherwise
    to the ghost; a miss on a ghost key enters main directly. Until the first eviction, keys
    that find the small queue full enter main (libCacheSim's refinement of the paper). Below
    10 keys the small queue holds none, and, as in libCacheSim, only ghost hits are admitted."""
    _check_capacity(capacity)
    small_size = int(capacity * small_ratio)
    main_size = capacity - small_size
    ghost_size = int(capacity * ghost_ratio)
    small: dict[int, int] = {}  # insertion order is the FIFO order; value: hits (freq)
    main: dict[int, int] = {}
    ghost: dict[int, None] = {}
    evicted = False
    hits = 0

    def evict_main() -> None:
        while main:
            key = next(iter(main))
            freq = main.pop(key)
            if freq >= 1:
                main[key] = min(freq, 3) - 1  # reinserted at the newest end
            else:
                return

    def evict_small() -> None:
        while small:
            key = next(iter(small))
            freq = small.pop(key)
            if freq >= move_to_main:
                main[key] = 0
            else:
                if ghost_size > 0:
                    ghost[key] = None
                    if len(ghost) > ghost_size:
                        del ghost[next(iter(ghost))]
                return

    for key in trace.tolist():
        if key in main:  # main and ghost never share a key, nor do small and ghost
            main[key] += 1
            hits += 1
            continue
        if key in small:
            small[key] += 1
            hits += 1
            continue
        in_ghost = ghost.pop(key, False) is None
        if not in_ghost and small_size < 1:
            continue  # libCacheSim: nothing fits in an empty small queue
        while len(small) + len(main) + 1 > capacity:
            evicted = True
            if len(main) > main_size or not small:
                evict_main()
            else:
                evict_small()
        if in_ghost or (not evicted and len(small) >= small_size):
            main[key] = 0
        else:
            small[key] = 0
    return hits / len(trace)


def _check_capacity(capacity: int) -> None:
    if not isinstance(capacity, int | np.integer) or capacity < 1:
        raise CacheError(f"capacity must be a positive number of keys, got {capacity!r}")
