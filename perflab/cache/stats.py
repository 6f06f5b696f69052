"""Per-tier counters of a tiered cache and the table ``TieredCache.stats()`` shows."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TierStats", "stats_frame"]


class TierStats:
    """Counters of one tier; latencies of every 16th operation through a driver."""

    __slots__ = ("deletes", "errors", "hits", "latencies", "misses", "ops", "sets")

    def __init__(self) -> None:
        self.hits = self.misses = self.sets = self.deletes = self.errors = self.ops = 0
        self.latencies: collections.deque[int] = collections.deque(maxlen=2048)


def stats_frame(
    rows: list[tuple[str, TierStats, int, int | None, int | None, tuple[Any, ...]]],
) -> pd.DataFrame:
    """One row per ``(name, stats, extra_hits, evictions, expired, (items, bytes))``: hits,
    misses, sets, deletes, evictions, expired (rows purged after their TTL; None where the
    tier expires by itself), errors, hit ratio, sampled latency p50/p99 (µs), items, bytes."""
    table = []
    for name, s, extra_hits, evictions, expired, (items, size) in rows:
        hits = s.hits + extra_hits
        lat = np.asarray(s.latencies, dtype=float) / 1e3
        table.append(
            {
                "tier": name,
                "hits": hits,
                "misses": s.misses,
                "sets": s.sets,
                "deletes": s.deletes,
                "evictions": evictions,
                "expired": expired,
                "errors": s.errors,
                "hit_ratio": hits / (hits + s.misses) if hits + s.misses else float("nan"),
                "p50_us": float(np.median(lat)) if lat.size else float("nan"),
                "p99_us": float(np.percentile(lat, 99)) if lat.size else float("nan"),
                "items": items,
                "bytes": size,
            }
        )
    return pd.DataFrame(table).set_index("tier")
