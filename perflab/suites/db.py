"""The query runner against raw drivers, side by side in one run: COPY vs raw psycopg COPY and
row-by-row commits; SQLite executemany vs raw sqlite3; primary-key fetch vs a raw prepared
select; bulk_update vs a per-row loop; materialized view vs the aggregate; index advice."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from perflab import bench, servers
from perflab.db import QueryRunner
from perflab.settings import resolve
from perflab.suites import SuiteRun, pair, register


def _rows(n: int, start: int = 0) -> list[tuple]:
    rng = np.random.default_rng(start)
    symbols = [f"S{i}" for i in range(500)]
    picks = rng.integers(0, len(symbols), n)
    prices = rng.random(n) * 100
    return [(start + i, symbols[picks[i]], (start + i) * 1000, float(prices[i])) for i in range(n)]


def _rate(fn, rows: int) -> float:
    t0 = time.perf_counter()
    fn()
    return rows / (time.perf_counter() - t0)


@register("db", "runner vs raw psycopg/sqlite3: COPY, PK fetch, bulk update, matview, index advice")
def db_suite(quick: bool) -> SuiteRun:
    import psycopg

    url = servers.start(resolve(), redis=False).database_url
    n = 10_000 if quick else 100_000
    checks: dict = {}
    results: list[bench.Result] = []
    schema = f"perflab_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    db = QueryRunner(f"{url}{sep}options=-csearch_path%3D{schema}")
    create = "CREATE TABLE {} (id integer PRIMARY KEY, symbol text, ts bigint, price float)"
    try:
        rows = _rows(n)
        for t in ("ticks", "raw_ticks", "slow_ticks"):
            db.execute(create.format(t))
        checks["pg_batch_insert_rows_per_s"] = _rate(
            lambda: db.batch_insert("ticks", rows, columns=["id", "symbol", "ts", "price"]), n
        )
        with psycopg.connect(url, autocommit=True, options=f"-csearch_path={schema}") as raw:

            def raw_copy() -> None:
                with (
                    raw.transaction(),
                    raw.cursor() as cur,
                    cur.copy(
                        "COPY raw_ticks (id, symbol, ts, price) FROM STDIN (FORMAT BINARY)"
                    ) as copy,
                ):
                    copy.set_types(["integer", "text", "bigint", "double precision"])
                    for row in rows:
                        copy.write_row(row)

            checks["pg_raw_copy_rows_per_s"] = _rate(raw_copy, n)
            sample = rows[: 1000 if quick else 3000]

            def row_by_row() -> None:
                for row in sample:
                    raw.execute("INSERT INTO slow_ticks VALUES (%s, %s, %s, %s)", row)

            checks["pg_row_by_row_commit_rows_per_s"] = _rate(row_by_row, len(sample))
            checks["pg_batch_insert_vs_raw_copy"] = (
                checks["pg_batch_insert_rows_per_s"] / checks["pg_raw_copy_rows_per_s"]
            )

            # primary-key fetch: the runner's pool vs one raw connection with prepare=True
            def raw_fetch() -> object:
                return raw.execute(
                    "SELECT price FROM ticks WHERE id = %s", (7,), prepare=True
                ).fetchall()

            c = bench.ab(
                raw_fetch,
                lambda: db.fetch("SELECT price FROM ticks WHERE id = :id", {"id": 7}),
                name="db/pk-fetch",
                rounds=6 if quick else 20,
                min_time=0.2 if quick else 1.0,
            )
            results += pair(c, "db/pk-fetch/raw-psycopg", "db/pk-fetch/runner")
            checks["pk_fetch_vs_raw_prepared"] = c.ratio
            rounds, budget = (4, 0.15) if quick else (10, 1.0)

            # the seed's claims: pooling, prepared statements, the query cache
            def new_connection_per_query() -> object:
                with psycopg.connect(
                    url, autocommit=True, options=f"-csearch_path={schema}"
                ) as fresh:
                    return fresh.execute("SELECT price FROM ticks WHERE id = %s", (7,)).fetchall()

            p = bench.ab(
                new_connection_per_query,
                lambda: db.fetch("SELECT price FROM ticks WHERE id = :id", {"id": 7}),
                name="db/pooling",
                rounds=rounds,
                min_time=budget,
            )
            results += pair(p, "db/connect-per-query", "db/pooled-fetch")
            checks["pooling_speedup"] = p.speedup
            unprepared = bench.ab(
                lambda: raw.execute(
                    "SELECT price FROM ticks WHERE id = %s", (7,), prepare=False
                ).fetchall(),
                raw_fetch,
                name="db/prepared",
                rounds=rounds,
                min_time=budget,
            )
            checks["prepared_speedup"] = unprepared.speedup
            aggregate_sql = "SELECT symbol, avg(price) AS mean FROM ticks GROUP BY symbol"
            cached_db = QueryRunner(f"{url}{sep}options=-csearch_path%3D{schema}", cache=True)
            cached_db.fetch(aggregate_sql, cache_ttl=300)
            q = bench.ab(
                lambda: db.fetch(aggregate_sql),
                lambda: cached_db.fetch(aggregate_sql, cache_ttl=300),
                name="db/query-cache",
                rounds=rounds,
                min_time=budget,
            )
            cached_db.close()
            results += pair(q, "db/aggregate-uncached", "db/aggregate-cached")
            checks["query_cache_speedup"] = q.speedup
            checks["batch_insert_vs_row_by_row"] = (
                checks["pg_batch_insert_rows_per_s"] / checks["pg_row_by_row_commit_rows_per_s"]
            )

            # bulk update vs per-row UPDATE
            m = n // 2
            updates = [{"id": i, "price": -1.0} for i in range(m)]
            checks["bulk_update_rows_per_s"] = _rate(lambda: db.bulk_update("ticks", updates), m)
            loop = updates[: 1000 if quick else 3000]

            def per_row() -> None:
                for u in loop:
                    raw.execute("UPDATE ticks SET price = %s WHERE id = %s", (u["price"], u["id"]))

            checks["per_row_update_rows_per_s"] = _rate(per_row, len(loop))
            checks["bulk_update_vs_per_row"] = (
                checks["bulk_update_rows_per_s"] / checks["per_row_update_rows_per_s"]
            )

        # materialized view vs the aggregate it stores
        aggregate = "SELECT symbol, count(*) AS n, avg(price) AS mean FROM ticks GROUP BY symbol"
        mv = db.materialized_view("symbol_stats", aggregate)
        t0 = time.perf_counter()
        mv.create(unique_on=["symbol"])
        checks["matview_create_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        mv.refresh(concurrently=True)
        checks["matview_refresh_concurrently_ms"] = (time.perf_counter() - t0) * 1e3
        v = bench.ab(
            lambda: db.fetch(aggregate + " HAVING symbol = :s", {"s": "S1"}),
            lambda: db.fetch('SELECT * FROM "symbol_stats" WHERE symbol = :s', {"s": "S1"}),
            name="db/matview",
            rounds=4 if quick else 10,
            min_time=0.2 if quick else 1.5,
        )
        results += pair(v, "db/aggregate-query", "db/matview-read")
        checks["matview_read_speedup"] = v.speedup

        # index advice on the (symbol, ts) filter, over a bigger table
        big = 30_000 if quick else 1_000_000
        db.execute(create.format("big_ticks"))
        db.batch_insert("big_ticks", _rows(big), columns=["id", "symbol", "ts", "price"])
        db.execute('ANALYZE "big_ticks"')
        sql = "SELECT * FROM big_ticks WHERE symbol = :s AND ts >= :t"
        # a symbol's most recent ticks: the last 1 % of the time range
        [suggestion] = db.suggest_indexes(sql, {"s": "S7", "t": int(big * 1000 * 0.99)})
        checks["index_table_rows"] = big
        applied = db.apply_index(suggestion, repeat=7)
        checks["index_columns"] = ",".join(suggestion.columns)
        checks["index_speedup"] = applied["speedup"]
        checks["index_before_ms"], checks["index_after_ms"] = (
            applied["before_ms"],
            applied["after_ms"],
        )
    finally:
        db.close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    # SQLite: the runner's executemany vs raw sqlite3 in one transaction
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lab.db"
        lite = QueryRunner(f"sqlite:///{path}")
        lite.execute(create.format("ticks"))
        checks["sqlite_batch_insert_rows_per_s"] = _rate(
            lambda: lite.batch_insert("ticks", rows, columns=["id", "symbol", "ts", "price"]), n
        )
        lite.close()
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as raw:
            raw.execute(create.format("raw_ticks"))

            def raw_many() -> None:
                raw.execute("BEGIN")
                raw.executemany("INSERT INTO raw_ticks VALUES (?, ?, ?, ?)", rows)
                raw.execute("COMMIT")

            checks["sqlite_raw_executemany_rows_per_s"] = _rate(raw_many, n)
        checks["sqlite_batch_insert_vs_raw"] = (
            checks["sqlite_batch_insert_rows_per_s"] / checks["sqlite_raw_executemany_rows_per_s"]
        )
    checks["rows"] = n
    return SuiteRun(suite="db", results=results, checks=checks)
