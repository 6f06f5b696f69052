"""The cache measured against what it wraps, side by side in one run:

* L1 hit ``get`` vs cachetools' LRUCache and raw cachebox;
* L2 hit ``get`` (L1 off) vs a raw redis-py GET + ``json.loads`` on the same client,
  ``get_many(100)`` vs MGET + ``json.loads`` of each value (equal work: the raw arms decode);
* L3 hit ``get`` (L1, L2 off) vs a raw psycopg prepared single-row select + ``json.loads``;
* hit ratio of each L1 policy on Zipf traces beside Belady's optimum, and on a trace whose
  popularity shifts halfway (where LFU without ageing collapses).
"""

from __future__ import annotations

import json
import uuid

import numpy as np

from perflab import bench, servers
from perflab.cache import (
    DatabaseTier,
    MemoryTier,
    RedisTier,
    TieredCache,
    belady_hit_ratio,
    policy_hit_ratio,
    shifting_trace,
    zipf_trace,
)
from perflab.settings import resolve
from perflab.suites import AB_QUICK, SuiteRun, centre_figure, pair, ratio_figure, register

POLICIES = ("lru", "lfu", "fifo", "tinylfu")


def latency(quick: bool) -> tuple[list[bench.Result], dict]:
    import cachebox

    try:
        import cachetools  # a peer, not a dependency: `pip install cachetools` for its row
    except ModuleNotFoundError:
        cachetools = None

    settings = resolve()
    endpoints = servers.start(settings)
    min_time = 0.3 if quick else 1.0
    budget = AB_QUICK if quick else None
    results, checks = [], {}

    l1 = TieredCache([MemoryTier(10_000)], default_ttl=300, coherence=False)
    l1.set("hot", 1)
    raw_box = cachebox.LRUCache(10_000)
    raw_box["hot"] = 1
    if cachetools is not None:
        peer = cachetools.LRUCache(10_000)
        peer["hot"] = 1
        # the headline pair interleaved, so its ratio has paired replicates (bench.ab)
        l1_ab = bench.ab(
            lambda: peer.get("hot"),
            lambda: l1.get("hot"),
            name="cache/l1-get",
            budget=AB_QUICK if quick else None,
        )
        tools, ours = pair(l1_ab, "cache/cachetools-lru-get", "cache/l1-get")
        results += [ours, tools]
        checks["l1_vs_cachetools"] = ratio_figure(l1_ab, speedup=False)
    else:
        ours = bench.run(lambda: l1.get("hot"), name="cache/l1-get", min_time=min_time)
        results.append(ours)
        checks["l1_vs_cachetools"] = (
            "not measured: cachetools is not installed (pip install cachetools)"
        )
    box = bench.run(lambda: raw_box.get("hot"), name="cache/cachebox-get", min_time=min_time)
    results.append(box)
    checks["l1_get_ns"] = centre_figure(ours)
    l1.close()

    prefix = f"{settings.key_prefix}bench{uuid.uuid4().hex[:8]}:"
    tier = RedisTier(endpoints.redis_url, prefix=prefix)
    l2 = TieredCache([tier], default_ttl=300, coherence=False)
    value = {"symbol": "ACME", "price": 101.25, "volume": 1200, "note": "x" * 60}
    keys = [f"k{i}" for i in range(100)]
    l2.set_many({k: value for k in [*keys, "hot"]})
    # Equal work: the raw arms read plain JSON and decode it, as a user of redis-py alone
    # would; same client (hiredis parser) and socket, so the difference is perflab's own work
    raw = tier.client
    plain = json.dumps(value)
    raw.set(prefix + "raw", plain, ex=300)
    raw_keys = [prefix + "raw:" + k for k in keys]
    raw.mset({k: plain for k in raw_keys})
    loads = json.loads

    def raw_get() -> object:
        data = raw.get(prefix + "raw")
        return None if data is None else loads(data)

    def raw_mget() -> dict:
        return {k: loads(v) for k, v in zip(keys, raw.mget(raw_keys), strict=True) if v}

    c = bench.ab(raw_get, lambda: l2.get("hot"), name="cache/l2-get", budget=budget)
    results += pair(c, "cache/l2-get/raw", "cache/l2-get/perflab")
    checks["l2_get_vs_raw_get"] = ratio_figure(c, speedup=False)
    checks["l2_get_us"] = centre_figure(c.candidate, 1e-3)
    m = bench.ab(raw_mget, lambda: l2.get_many(keys), name="cache/l2-get-many-100", budget=budget)
    results += pair(m, "cache/l2-get-many-100/raw", "cache/l2-get-many-100/perflab")
    checks["l2_get_many_vs_raw_mget"] = ratio_figure(m, speedup=False)
    raw.delete(prefix + "raw", *raw_keys)
    l2.clear()
    l2.close()

    db = DatabaseTier(endpoints.database_url, table=f"bench_{uuid.uuid4().hex[:8]}")
    l3 = TieredCache([db], default_ttl=300, coherence=False)
    l3.set("hot", value)
    qualified = (
        f'"{db.table.schema}"."{db.table.name}"' if db.table.schema else f'"{db.table.name}"'
    )
    # the raw select runs on the tier's own kept connection (the same server backend): on a
    # connection of its own the ratio measured which vCPU each backend sat on (0.27x-4x)
    conn = db.driver_connection()
    postgres = db.engine.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    # the raw arm's row holds plain JSON, decoded as a user would (identifiers validated above)
    l3_raw = f"SELECT value FROM {qualified} WHERE key = {mark}"
    insert = f"INSERT INTO {qualified} (key, value) VALUES ({mark}, {mark})"
    conn.execute(insert, ("raw", plain.encode()))
    if not postgres:
        conn.commit()

    def raw_select() -> object:
        if postgres:
            return loads(conn.execute(l3_raw, ("raw",), prepare=True).fetchone()[0])
        return loads(conn.execute(l3_raw, ("raw",)).fetchone()[0])

    d = bench.ab(raw_select, lambda: l3.get("hot"), name="cache/l3-get", budget=budget)
    results += pair(d, "cache/l3-get/raw", "cache/l3-get/perflab")
    checks["l3_get_vs_raw_prepared_select"] = ratio_figure(d, speedup=False)
    db.drop()
    l3.close()
    return results, checks


def hit_ratios(quick: bool) -> dict:
    n_keys, length = (2_000, 40_000) if quick else (10_000, 200_000)
    checks: dict = {}
    for alpha in (0.8, 1.0, 1.2):
        trace = zipf_trace(n_keys, length, alpha, seed=1)
        for fraction in (0.01, 0.05, 0.10):
            capacity = int(n_keys * fraction)
            label = f"zipf{alpha:g}/cap{fraction:.0%}"
            checks[f"hit/{label}/belady"] = belady_hit_ratio(trace, capacity)
            for policy in POLICIES:
                checks[f"hit/{label}/{policy}"] = policy_hit_ratio(trace, capacity, policy)
    lru, best = checks["hit/zipf1/cap5%/lru"], checks["hit/zipf1/cap5%/belady"]
    top = max(checks[f"hit/zipf1/cap5%/{p}"] for p in POLICIES)
    checks["gap_closed_zipf1_cap5%"] = (top - lru) / (best - lru) if best > lru else float("nan")
    shifted = shifting_trace(n_keys, length, 1.0, seed=2)
    capacity = int(n_keys * 0.05)
    checks["hit/shift/cap5%/belady"] = belady_hit_ratio(shifted, capacity)
    for policy in POLICIES:
        checks[f"hit/shift/cap5%/{policy}"] = policy_hit_ratio(shifted, capacity, policy)
    return checks


@register("cache", "L1/L2/L3 hits vs cachetools, raw redis-py, raw psycopg; policy hit ratios")
def cache(quick: bool) -> SuiteRun:
    results, checks = latency(quick)
    checks.update(hit_ratios(quick))
    return SuiteRun(
        suite="cache", results=results, checks={k: _plain(v) for k, v in checks.items()}
    )


def _plain(value: object) -> object:
    return float(value) if isinstance(value, np.floating | float) else value
