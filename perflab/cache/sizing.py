"""How big should the cache be, and which policy: a trace replayed at a range of capacities
through every policy and Belady's optimum, then read as decisions (plain functions, no I/O)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from perflab.cache.simulate import SIMULATED, replay_hit_ratio
from perflab.errors import CacheError

__all__ = [
    "advice",
    "best_policy",
    "capacity_for",
    "default_capacities",
    "hit_ratio_curve",
    "smallest_capacity",
]

_FRACTIONS = (0.001, 0.005, 0.02, 0.1, 0.3)


def default_capacities(distinct: int, fractions: Sequence[float] = _FRACTIONS) -> list[int]:
    """Capacities spread geometrically over the trace's distinct keys (0.1 % to 30 %), at least
    10 keys each (below that S3-FIFO has no small queue at all)."""
    if distinct < 1:
        raise CacheError("the trace has no keys, so there is no capacity to try")
    floor = min(10, distinct)
    return sorted({max(floor, round(distinct * f)) for f in fractions})


def hit_ratio_curve(
    ids: np.ndarray,
    capacities: Iterable[int],
    policies: Sequence[str] = SIMULATED,
    *,
    belady: bool = True,
    workers: int = 1,
) -> pd.DataFrame:
    """One row per (policy, capacity): ``hit_ratio`` of replaying ``ids`` (keys as ints). The
    L1 policies replay on a real MemoryTier; ``belady`` adds the offline optimum. With
    ``workers`` > 1 the replays are spread over that many processes (each gets the trace
    once); every replay is independent, so the ratios are the same."""
    ids = np.asarray(ids)
    if ids.size == 0:
        raise CacheError("the trace is empty: nothing to replay")
    if not isinstance(workers, int) or workers < 1:
        raise CacheError(f"workers must be a positive whole number, got {workers!r}")
    wanted = sorted({int(c) for c in capacities})
    if not wanted or wanted[0] < 1:
        raise CacheError(f"capacities must be positive numbers of keys, got {wanted}")
    distinct = int(np.unique(ids).size)
    tasks = [(c, p) for c in wanted for p in (*policies, *(("belady",) if belady else ()))]
    started = time.perf_counter()
    if workers == 1:
        ratios = [replay_hit_ratio(ids, c, p) for c, p in tasks]
    else:
        ratios = _in_processes(ids, tasks, workers)
    curve = pd.DataFrame(
        [
            {"policy": p, "capacity": c, "capacity_share": c / distinct, "hit_ratio": r}
            for (c, p), r in zip(tasks, ratios, strict=True)
        ]
    )
    curve.attrs.update(requests=int(ids.size), distinct=distinct)
    curve.attrs["seconds"] = time.perf_counter() - started
    return curve


_TRACE: np.ndarray | None = None  # a worker process's copy of the trace


def _receive(ids: np.ndarray) -> None:
    global _TRACE
    _TRACE = ids


def _replay(task: tuple[int, str]) -> float:
    assert _TRACE is not None
    return replay_hit_ratio(_TRACE, *task)


def _in_processes(ids: np.ndarray, tasks: list[tuple[int, str]], workers: int) -> list[float]:
    """The replays on ``workers`` spawned processes (spawn: safe inside a kernel's threads)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_receive, initargs=(ids,)
    ) as pool:
        return list(pool.map(_replay, tasks))


def capacity_for(curve: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per policy, the smallest replayed capacity whose hit ratio reaches ``target`` (0-1), or
    NaN when none of the capacities did (replay larger ones)."""
    if not 0 < target <= 1:
        raise CacheError(f"target hit ratio must be in (0, 1], got {target!r}")
    rows = []
    for policy, part in curve.sort_values("capacity").groupby("policy", sort=False):
        reached = part[part["hit_ratio"] >= target]
        rows.append(
            {
                "policy": policy,
                "capacity": int(reached["capacity"].iloc[0]) if len(reached) else np.nan,
                "hit_ratio": float(reached["hit_ratio"].iloc[0]) if len(reached) else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("policy")


def best_policy(curve: pd.DataFrame) -> pd.DataFrame:
    """Per capacity, the real policy (not Belady) with the highest hit ratio, its ratio, the
    runner-up's and Belady's ceiling where replayed."""
    real = curve[curve["policy"] != "belady"]
    rows = []
    for capacity, part in real.groupby("capacity"):
        ranked = part.sort_values("hit_ratio", ascending=False)
        ceiling = curve[(curve["policy"] == "belady") & (curve["capacity"] == capacity)]
        rows.append(
            {
                "capacity": capacity,
                "best": ranked["policy"].iloc[0],
                "hit_ratio": ranked["hit_ratio"].iloc[0],
                "runner_up": ranked["policy"].iloc[1] if len(ranked) > 1 else None,
                "runner_up_ratio": ranked["hit_ratio"].iloc[1] if len(ranked) > 1 else np.nan,
                "belady": ceiling["hit_ratio"].iloc[0] if len(ceiling) else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("capacity")


def advice(curve: pd.DataFrame, target: float, ids: np.ndarray | None = None) -> str:
    """The answer in one sentence: the smallest capacity at which a real policy reaches
    ``target``, which policy, and what Belady says no policy can beat. With ``ids`` (the
    trace), the capacity is bisected between the replayed ones to within 5 %."""
    needed = capacity_for(curve, target)
    real = needed.drop(index="belady", errors="ignore").dropna()
    wanted = f"{target:.0%} hits"
    if real.empty:
        largest = int(curve["capacity"].max())
        best = curve[curve["capacity"] == largest].sort_values("hit_ratio").iloc[-1]
        return (
            f"No policy reaches {wanted} at the capacities replayed (up to {largest:,} keys, "
            f"where {best['policy']} does best with {best['hit_ratio']:.1%}); replay larger "
            "capacities."
        )
    at = real.sort_values(["capacity", "hit_ratio"], ascending=[True, False])
    policy, capacity, ratio = at.index[0], int(at.iloc[0]["capacity"]), at.iloc[0]["hit_ratio"]
    if ids is not None:
        capacity, ratio = _refine(ids, curve, policy, target, capacity, ratio)
    distinct = curve.attrs.get("distinct")
    share = f" ({capacity / distinct:.1%} of the distinct keys)" if distinct else ""
    text = f"{policy} reaches {wanted} with {capacity:,} keys{share}: {ratio:.1%} there."
    if "belady" in needed.index and not np.isnan(needed.loc["belady", "capacity"]):
        floor = int(needed.loc["belady", "capacity"])
        if ids is not None:
            floor, _ = _refine(ids, curve, "belady", target, floor, np.nan)
        text += f" Belady's optimum needs {floor:,}: no policy can do it with much less."
    return text


def _refine(
    ids: np.ndarray, curve: pd.DataFrame, policy: str, target: float, capacity: int, ratio: float
) -> tuple[int, float]:
    smaller = curve[(curve["policy"] == policy) & (curve["capacity"] < capacity)]
    if smaller.empty:
        return capacity, ratio
    return smallest_capacity(ids, policy, target, int(smaller["capacity"].max()), capacity)


def smallest_capacity(
    ids: np.ndarray, policy: str, target: float, low: int, high: int, *, rel: float = 0.05
) -> tuple[int, float]:
    """Bisect between ``low`` (misses ``target``) and ``high`` (reaches it) to within ``rel``
    (5 %): the smallest capacity found at which ``policy`` reaches ``target``, and its ratio.
    Assumes the ratio grows with capacity, true of LRU and Belady (stack algorithms) and very
    nearly of the others."""
    if not 1 <= low < high:
        raise CacheError(f"smallest_capacity needs 1 <= low < high, got {low} and {high}")
    ratio = replay_hit_ratio(ids, high, policy)
    if ratio < target:
        raise CacheError(
            f"{policy} does not reach {target:.0%} at {high:,} keys ({ratio:.1%}); replay larger "
            "capacities"
        )
    while high > low + 1 and high > low * (1 + rel):
        middle = (low + high) // 2
        reached = replay_hit_ratio(ids, middle, policy)
        if reached >= target:
            high, ratio = middle, reached
        else:
            low = middle
    return high, ratio
