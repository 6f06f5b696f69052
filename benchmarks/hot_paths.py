"""What perflab's hot paths cost over the raw driver calls they wrap (issue 24's targets).

Each pair is interleaved (``bench.ab``) and compares equal work: the raw arm decodes the same
JSON (L2) or returns the same rows (L3, runner), as a user of the driver alone would write it.
L3 and the runner are measured twice: the raw arm on a connection of its own, as a user would
open it, and on the very connection perflab keeps (then only perflab's own work differs).

    .venv/bin/python benchmarks/hot_paths.py [--budget 10] [--only l2,l3,runner,l1]

Uses the lab's servers (embedded, or PERFLAB_REDIS_URL / PERFLAB_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import psycopg

from perflab import bench, servers
from perflab.cache import DatabaseTier, MemoryTier, RedisTier, TieredCache
from perflab.db import QueryRunner
from perflab.settings import resolve

CLOCK = {"wall": time.perf_counter_ns, "cpu": time.process_time_ns}
_clock = ["wall"]


def line(name: str, c) -> str:
    per_call = c.candidate.median - c.baseline.median
    return (
        f"{name:50s} {_clock[0]:4s} {c.ratio:.3f}x  [{c.ci_low:.3f}, {c.ci_high:.3f}]  "
        f"{c.verdict:12s} {per_call / 1e3:+7.2f} µs/call"
    )


def ab(baseline, candidate, name: str, budget: float):
    return bench.ab(baseline, candidate, name=name, budget=budget, clock=CLOCK[_clock[0]])


def l1(budget: float) -> list[str]:
    import cachetools

    cache = TieredCache([MemoryTier(10_000)], default_ttl=300, coherence=False)
    cache.set("hot", 1)
    peer = cachetools.LRUCache(10_000)
    peer["hot"] = 1
    c = ab(lambda: peer.get("hot"), lambda: cache.get("hot"), name="l1", budget=budget)
    return [line("L1 get / cachetools LRUCache.get", c)]


def l2(budget: float, url: str, prefix: str) -> list[str]:
    tier = RedisTier(url, prefix=prefix)
    cache = TieredCache([tier], default_ttl=300, coherence=False)
    value = {"symbol": "ACME", "price": 101.25, "volume": 1200, "note": "x" * 60}
    keys = [f"k{i}" for i in range(100)]
    cache.set_many({k: value for k in [*keys, "hot"]})
    raw = tier.client  # the same client (hiredis parser) and connection pool
    raw.set(prefix + "raw", json.dumps(value))
    raw_keys = [prefix + "raw:" + k for k in keys]
    raw.mset({k: json.dumps(value) for k in raw_keys})
    loads = json.loads

    def raw_get():
        data = raw.get(prefix + "raw")
        return None if data is None else loads(data)

    def raw_mget():
        return {k: loads(v) for k, v in zip(keys, raw.mget(raw_keys), strict=True) if v is not None}

    out = []
    c = ab(raw_get, lambda: cache.get("hot"), name="l2-get", budget=budget)
    out.append(line("L2 get / raw GET + json.loads", c))
    c = ab(raw_mget, lambda: cache.get_many(keys), name="l2-many", budget=budget)
    out.append(line("L2 get_many(100) / raw MGET + json.loads", c))
    cache.clear()
    raw.delete(prefix + "raw", *raw_keys)
    cache.close()
    return out


def l3(budget: float, url: str) -> list[str]:
    db = DatabaseTier(url, table=f"hot_{uuid.uuid4().hex[:8]}")
    cache = TieredCache([db], default_ttl=300, coherence=False)
    value = {"symbol": "ACME", "price": 101.25, "volume": 1200, "note": "x" * 60}
    cache.set("hot", value)
    table = f'"{db.table.schema}"."{db.table.name}"' if db.table.schema else f'"{db.table.name}"'
    sql = f"SELECT value FROM {table} WHERE key = %s"  # identifiers validated by the tier
    own = psycopg.connect(url, autocommit=True)
    # the raw arm's row holds the value as plain JSON and decodes it, as a user would
    own.execute(
        f"INSERT INTO {table} (key, value) VALUES (%s, %s)", ("raw", json.dumps(value).encode())
    )
    kept = db.driver_connection()
    loads = json.loads
    out = []
    for label, conn in (("own connection", own), ("one connection", kept)):
        c = ab(
            lambda conn=conn: loads(conn.execute(sql, ("raw",), prepare=True).fetchone()[0]),
            lambda: cache.get("hot"),
            name="l3",
            budget=budget,
        )
        out.append(line(f"L3 get / raw prepared select + json.loads ({label})", c))
    own.close()
    db.drop()
    cache.close()
    return out


def runner(budget: float, url: str) -> list[str]:
    schema = resolve().schema or "public"
    runner = QueryRunner(url)
    table = f"hot_{uuid.uuid4().hex[:8]}"
    runner.execute(f'CREATE TABLE "{schema}"."{table}" (id int PRIMARY KEY, price float8, v text)')
    runner.execute(
        f'INSERT INTO "{schema}"."{table}" SELECT i, i * 1.5, md5(i::text) '
        "FROM generate_series(1, 1000) i"
    )
    sql = f'SELECT id, price, v FROM "{schema}"."{table}" WHERE id = :id'
    raw_sql = f'SELECT id, price, v FROM "{schema}"."{table}" WHERE id = %s'
    own = psycopg.connect(url, autocommit=True)
    kept = runner.driver_connection()
    out = []
    for label, conn in (("own connection", own), ("one connection", kept)):
        c = ab(
            lambda conn=conn: conn.execute(raw_sql, (42,), prepare=True).fetchall(),
            lambda: runner.fetch(sql, {"id": 42}),
            name="runner",
            budget=budget,
        )
        out.append(line(f"QueryRunner.fetch PK / raw psycopg ({label})", c))
    own.close()
    runner.execute(f'DROP TABLE "{schema}"."{table}"')
    runner.close()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--only", default="l1,l2,l3,runner")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: the call end to end; cpu: this process's CPU time only (the round trip's "
        "wait excluded: what the layer itself costs, far less noisy here)",
    )
    args = parser.parse_args()
    _clock[0] = args.clock
    settings = resolve()
    endpoints = servers.start(settings)
    prefix = f"{settings.key_prefix}hot{uuid.uuid4().hex[:8]}:"
    wanted = set(args.only.split(","))
    lines = []
    if "l1" in wanted:
        lines += l1(args.budget)
    if "l2" in wanted:
        lines += l2(args.budget, endpoints.redis_url, prefix)
    if "l3" in wanted:
        lines += l3(args.budget, endpoints.database_url)
    if "runner" in wanted:
        lines += runner(args.budget, endpoints.database_url)
    print("\n".join(lines))
