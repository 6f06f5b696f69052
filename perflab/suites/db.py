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
from typing import Any

import numpy as np

from perflab import bench, servers
from perflab.db import QueryRunner
from perflab.settings import resolve
from perflab.suites import (
    AB_QUICK,
    SuiteRun,
    centre_figure,
    figure,
    figure_parts,
    pair,
    ratio_figure,
    register,
)


def _rows(n: int, start: int = 0) -> list[tuple]:
    rng = np.random.default_rng(start)
    symbols = [f"S{i}" for i in range(500)]
    picks = rng.integers(0, len(symbols), n)
    prices = rng.random(n) * 100
    return [(start + i, symbols[picks[i]], (start + i) * 1000, float(prices[i])) for i in range(n)]


def _rows_per_s(result: bench.Result, rows: int) -> dict:
    """Rows per second of a result whose every call handles ``rows`` rows, with its CI."""
    value, low, high = figure_parts(centre_figure(result, 1e-9))  # seconds per call
    if low is None or high is None:
        return figure(rows / value)
    return figure(rows / value, rows / high, rows / low)


def _scaled(fig: dict, factor: float) -> dict:
    value, low, high = figure_parts(fig)
    if low is None or high is None:
        return figure(value * factor)
    return figure(value * factor, low * factor, high * factor)


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
    plain = "CREATE TABLE {} (id integer, symbol text, ts bigint, price float)"
    try:
        rows = _rows(n)
        for t in ("ticks",):
            db.execute(create.format(t))
        for t in ("copy_ticks", "raw_ticks", "slow_ticks"):  # no key: each call appends again
            db.execute(plain.format(t))
        db.batch_insert("ticks", rows, columns=["id", "symbol", "ts", "price"])
        with psycopg.connect(url, autocommit=True, options=f"-csearch_path={schema}") as raw:

            def ours_copy() -> None:
                db.batch_insert("copy_ticks", rows, columns=["id", "symbol", "ts", "price"])

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

            sample = rows[: 1000 if quick else 3000]

            def row_by_row() -> None:
                for row in sample:
                    raw.execute("INSERT INTO slow_ticks VALUES (%s, %s, %s, %s)", row)

            copies = bench.ab(raw_copy, ours_copy, name="db/batch-insert",
                              budget=AB_QUICK if quick else None)  # fmt: skip
            results += pair(copies, "db/batch-insert/raw-copy", "db/batch-insert/runner")
            checks["pg_batch_insert_rows_per_s"] = _rows_per_s(copies.candidate, n)
            checks["pg_raw_copy_rows_per_s"] = _rows_per_s(copies.baseline, n)
            checks["pg_batch_insert_vs_raw_copy"] = ratio_figure(copies, speedup=False)
            batch = bench.ab(row_by_row, ours_copy, name="db/row-by-row-vs-batch",
                             budget=AB_QUICK if quick else None)  # fmt: skip
            results += pair(batch, "db/insert/row-by-row", "db/insert/batch")
            checks["pg_row_by_row_commit_rows_per_s"] = _rows_per_s(batch.baseline, len(sample))
            # per row: each call of the two arms inserts a different number of rows
            checks["batch_insert_vs_row_by_row"] = _scaled(ratio_figure(batch), n / len(sample))

            # primary-key fetch: QueryRunner.fetch vs raw psycopg doing the same driver work
            # (the same named-parameter query bound from a dict, prepared, rows fetched, the
            # column names read, the cursor closed) over the *same* connection, so the same
            # server backend: on two connections the ratio measured where the scheduler put
            # each backend (same vCPU as the client ~20 µs a round trip, the other 120-150 µs),
            # and an arm on its own connection came out 0.4x-2.4x of the other from run to run
            db.fetch("SELECT 1")  # the runner keeps its hot-path connection from here on
            shared = db.driver_connection("read")

            def raw_select(prepare: bool) -> object:
                cur = shared.execute(
                    "SELECT price FROM ticks WHERE id = %(id)s", {"id": 7}, prepare=prepare
                )
                rows, _columns = cur.fetchall(), cur.description
                cur.close()
                return rows

            def raw_fetch() -> object:
                return raw_select(True)

            c = bench.ab(
                raw_fetch,
                lambda: db.fetch("SELECT price FROM ticks WHERE id = :id", {"id": 7}),
                name="db/pk-fetch",
                budget=AB_QUICK if quick else None,
            )
            results += pair(c, "db/pk-fetch/raw-psycopg", "db/pk-fetch/runner")
            checks["pk_fetch_vs_raw_prepared"] = ratio_figure(c, speedup=False)

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
                budget=AB_QUICK if quick else None,
            )
            results += pair(p, "db/connect-per-query", "db/pooled-fetch")
            checks["pooling_speedup"] = ratio_figure(p)
            unprepared = bench.ab(
                lambda: raw_select(False),
                raw_fetch,
                name="db/prepared",
                budget=AB_QUICK if quick else None,
            )
            checks["prepared_speedup"] = ratio_figure(unprepared)
            aggregate_sql = "SELECT symbol, avg(price) AS mean FROM ticks GROUP BY symbol"
            cached_db = QueryRunner(f"{url}{sep}options=-csearch_path%3D{schema}", cache=True)
            cached_db.fetch(aggregate_sql, cache_ttl=300)
            q = bench.ab(
                lambda: db.fetch(aggregate_sql),
                lambda: cached_db.fetch(aggregate_sql, cache_ttl=300),
                name="db/query-cache",
                budget=AB_QUICK if quick else None,
            )
            cached_db.close()
            results += pair(q, "db/aggregate-uncached", "db/aggregate-cached")
            checks["query_cache_speedup"] = ratio_figure(q)

            # bulk update vs per-row UPDATE
            m = n // 2
            updates = [{"id": i, "price": -1.0} for i in range(m)]
            loop = updates[: 1000 if quick else 3000]

            def per_row() -> None:
                for u in loop:
                    raw.execute("UPDATE ticks SET price = %s WHERE id = %s", (u["price"], u["id"]))

            bulk = bench.ab(per_row, lambda: db.bulk_update("ticks", updates),
                            name="db/bulk-update",
                            budget=AB_QUICK if quick else None)  # fmt: skip
            results += pair(bulk, "db/update/per-row", "db/update/bulk")
            checks["bulk_update_rows_per_s"] = _rows_per_s(bulk.candidate, m)
            checks["per_row_update_rows_per_s"] = _rows_per_s(bulk.baseline, len(loop))
            checks["bulk_update_vs_per_row"] = _scaled(ratio_figure(bulk), m / len(loop))

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
            budget=AB_QUICK if quick else None,
        )
        results += pair(v, "db/aggregate-query", "db/matview-read")
        checks["matview_read_speedup"] = ratio_figure(v)

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
        lite.execute(plain.format("ticks"))
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as raw:
            raw.execute(plain.format("raw_ticks"))

            def raw_many() -> None:
                raw.execute("BEGIN")
                raw.executemany("INSERT INTO raw_ticks VALUES (?, ?, ?, ?)", rows)
                raw.execute("COMMIT")

            lite_ab = bench.ab(
                raw_many,
                lambda: lite.batch_insert("ticks", rows, columns=["id", "symbol", "ts", "price"]),
                name="db/sqlite-batch-insert",
                budget=AB_QUICK if quick else None,
            )
        lite.close()
        results += pair(lite_ab, "db/sqlite-insert/raw", "db/sqlite-insert/runner")
        checks["sqlite_batch_insert_rows_per_s"] = _rows_per_s(lite_ab.candidate, n)
        checks["sqlite_raw_executemany_rows_per_s"] = _rows_per_s(lite_ab.baseline, n)
        checks["sqlite_batch_insert_vs_raw"] = ratio_figure(lite_ab, speedup=False)
    checks["rows"] = n
    return SuiteRun(
        suite="db", results=results, checks=checks, tables={"figures": figures_frame(checks)}
    )


# check -> (what it measures, unit, note): notebook 02's "Throughput and speedups" table
FIGURES = [
    ("pg_batch_insert_rows_per_s", "PostgreSQL insert, QueryRunner.batch_insert", "rows/s", ""),
    ("pg_raw_copy_rows_per_s", "PostgreSQL insert, raw psycopg binary COPY", "rows/s", ""),
    ("pg_batch_insert_vs_raw_copy", "batch_insert time ÷ raw COPY time", "x", "1 = no overhead"),
    ("pg_row_by_row_commit_rows_per_s", "PostgreSQL insert, one INSERT per row", "rows/s", ""),
    ("batch_insert_vs_row_by_row", "batch insert vs one INSERT per row", "x",
     "the arms insert different numbers of rows per call: compared per row"),
    ("pk_fetch_vs_raw_prepared", "PK fetch: QueryRunner.fetch time ÷ raw prepared select", "x",
     "same query, same driver calls, same connection (server process); "
     "the difference is the runner's checkout and bookkeeping"),
    ("pooling_speedup", "pooled fetch vs a new connection per query", "x", ""),
    ("prepared_speedup", "prepared vs unprepared select (raw psycopg)", "x", ""),
    ("query_cache_speedup", "query cache hit vs the aggregate it stores", "x", ""),
    ("bulk_update_rows_per_s", "bulk update, QueryRunner.bulk_update", "rows/s", ""),
    ("per_row_update_rows_per_s", "update, one UPDATE per row", "rows/s", ""),
    ("bulk_update_vs_per_row", "bulk update vs one UPDATE per row", "x",
     "the arms update different numbers of rows per call: compared per row"),
    ("matview_create_ms", "materialized view: create", "ms", "one timing, no replicates"),
    ("matview_refresh_concurrently_ms", "materialized view: refresh concurrently", "ms",
     "one timing, no replicates"),
    ("matview_read_speedup", "materialized view read vs the aggregate", "x", ""),
    ("index_columns", "index advice: suggested columns", "", ""),
    ("index_table_rows", "index advice: table size", "rows", ""),
    ("index_before_ms", "index advice: query before the index", "ms", "median of 7"),
    ("index_after_ms", "index advice: query after the index", "ms", "median of 7"),
    ("index_speedup", "index advice: speedup", "x", "from the two medians of 7; no CI"),
    ("sqlite_batch_insert_rows_per_s", "SQLite insert, QueryRunner.batch_insert", "rows/s", ""),
    ("sqlite_raw_executemany_rows_per_s", "SQLite insert, raw sqlite3 executemany", "rows/s", ""),
    ("sqlite_batch_insert_vs_raw", "SQLite batch_insert time ÷ raw executemany time", "x",
     "1 = no overhead"),
]  # fmt: skip


def figures_frame(checks: dict) -> Any:
    """The suite's figures as a labelled table: label, value, CI, unit, note (a figure that is
    not a number, such as the suggested index columns, keeps its text)."""
    import pandas as pd

    rows = []
    for key, label, unit, note in FIGURES:
        if key not in checks:
            continue
        value, low, high = figure_parts(checks[key])
        rows.append(
            {
                "label": label,
                "value": checks[key] if value is None else value,
                "ci_low": low,
                "ci_high": high,
                "unit": unit,
                "note": note,
            }
        )
    return pd.DataFrame(rows, columns=["label", "value", "ci_low", "ci_high", "unit", "note"])
