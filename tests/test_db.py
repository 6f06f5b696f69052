"""The query runner on real PostgreSQL (embedded or system) and SQLite, every method."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pandas as pd
import psycopg
import pytest

from perflab import servers
from perflab.db import BatchInsertError, PoolConfig, QueryRunner
from perflab.errors import QueryError


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.servers), "sqlite"])
def db(request, settings, tmp_path):
    if request.param == "postgresql":
        url = servers.start(settings, redis=False).database_url
        runner = QueryRunner(url, cache=True)
        schema = f"perflab_db_{uuid.uuid4().hex[:8]}"
        runner.execute(f'CREATE SCHEMA "{schema}"')
        runner.close()
        # every connection of this runner works in the test's own schema
        sep = "&" if "?" in url else "?"
        runner = QueryRunner(f"{url}{sep}options=-csearch_path%3D{schema}", cache=True)
        yield runner
        runner.execute(f'DROP SCHEMA "{schema}" CASCADE')
    else:
        runner = QueryRunner(f"sqlite:///{tmp_path / 'lab.db'}", cache=True)
        yield runner
    runner.close()


def make_ticks(db: QueryRunner, n: int = 5000) -> pd.DataFrame:
    db.execute("CREATE TABLE ticks (id integer PRIMARY KEY, symbol text, ts bigint, price float)")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "symbol": rng.choice([f"S{i}" for i in range(100)], n),
            "ts": np.arange(n) * 1000,
            "price": rng.random(n),
        }
    )
    assert db.batch_insert("ticks", frame) == n
    return frame


def test_fetch_query_execute_with_named_parameters(db):
    frame = make_ticks(db, 100)
    assert db.fetch("SELECT price FROM ticks WHERE id = :id", {"id": 7}) == [(frame.price[7],)]
    got = db.query("SELECT id, symbol FROM ticks WHERE id < :n ORDER BY id", {"n": 3})
    assert list(got.columns) == ["id", "symbol"] and got.id.tolist() == [0, 1, 2]
    assert db.execute("UPDATE ticks SET price = :p WHERE id < :n", {"p": 0.0, "n": 10}) == 10
    with pytest.raises(QueryError, match=r"missing parameter|\bn\b"):
        db.fetch("SELECT 1 FROM ticks WHERE id = :n", {})


def test_batch_insert_takes_frames_tuples_dicts_and_iterators(db):
    db.execute("CREATE TABLE t (id integer PRIMARY KEY, name text)")
    assert db.batch_insert("t", [(1, "a"), (2, "b")]) == 2
    assert db.batch_insert("t", [{"id": 3, "name": "c"}]) == 1
    assert db.batch_insert("t", ((i, f"g{i}") for i in range(10, 1010))) == 1000  # streamed
    assert db.batch_insert("t", pd.DataFrame({"id": [5000], "name": ["df"]})) == 1
    assert db.batch_insert("t", []) == 0
    assert db.fetch("SELECT count(*) FROM t") == [(1004,)]


def test_batch_insert_is_all_or_nothing_by_default(db):
    db.execute("CREATE TABLE t (id integer PRIMARY KEY, name text)")
    rows = [(i, "x") for i in range(500)] + [(3, "duplicate")]
    with pytest.raises(QueryError):
        db.batch_insert("t", rows)
    assert db.fetch("SELECT count(*) FROM t") == [(0,)]


def test_chunked_batch_insert_reports_where_to_resume(db):
    db.execute("CREATE TABLE t (id integer PRIMARY KEY, name text)")
    rows = [(i, "x") for i in range(1000)]
    bad = [*rows[:250], (0, "duplicate"), *rows[250:]]
    with pytest.raises(BatchInsertError) as info:
        db.batch_insert("t", bad, chunk_size=100)
    assert info.value.inserted == 200  # two whole chunks committed
    assert db.batch_insert("t", rows[info.value.inserted :], chunk_size=100) == 800
    assert db.fetch("SELECT count(*), count(DISTINCT id) FROM t") == [(1000, 1000)]


def test_bulk_update(db):
    make_ticks(db, 2000)
    updates = pd.DataFrame({"id": np.arange(0, 2000, 2), "price": np.full(1000, -1.0)})
    assert db.bulk_update("ticks", updates) == 1000
    assert db.fetch("SELECT count(*) FROM ticks WHERE price = -1") == [(1000,)]
    assert db.fetch("SELECT price FROM ticks WHERE id = 1")[0][0] != -1
    with pytest.raises(QueryError, match="key column 'id'"):
        db.bulk_update("ticks", [{"price": 1.0}])


def test_materialized_view(db):
    make_ticks(db, 1000)
    mv = db.materialized_view(
        "by_symbol", "SELECT symbol, count(*) AS n FROM ticks GROUP BY symbol"
    )
    mv.create(unique_on=["symbol"])
    before = mv.query("symbol = :s", {"s": "S1"}).n.iloc[0]
    db.execute("INSERT INTO ticks VALUES (100000, 'S1', 1, 1.0)")
    assert mv.query("symbol = :s", {"s": "S1"}).n.iloc[0] == before  # stored, not live
    mv.refresh(concurrently=db.postgres)
    assert mv.query("symbol = :s", {"s": "S1"}).n.iloc[0] == before + 1
    mv.drop()


def test_explain_and_index_advice_change_the_plan(db):
    make_ticks(db, 20000)
    sql = "SELECT * FROM ticks WHERE symbol = :s AND ts >= :t"
    params = {"s": "S7", "t": 5_000_000}
    plan = db.explain(sql, params)
    frame = plan.to_frame()
    assert {"node_type", "relation", "actual_rows", "rows_removed_by_filter", "time_ms"} <= set(
        frame.columns
    )
    assert [n.relation for n in plan.seq_scans] == ["ticks"]
    [suggestion] = db.suggest_indexes(sql, params)
    assert suggestion.table == "ticks" and suggestion.columns == ("symbol", "ts")
    assert "ticks" in suggestion.reason and suggestion.ddl.startswith("CREATE INDEX")
    result = db.apply_index(suggestion)
    assert result["before_ms"] > 0 and result["after_ms"] > 0
    after = db.explain(sql, params)
    assert not after.seq_scans
    assert any("Index" in n.node_type for n in after.nodes())


def test_query_cache_is_invalidated_by_writes(db):
    make_ticks(db, 100)
    sql = "SELECT count(*) FROM ticks WHERE price >= :p"
    first = db.fetch(sql, {"p": 0.0}, cache_ttl=60)
    assert db.fetch(sql, {"p": 0.0}, cache_ttl=60) == first
    assert db.stats().loc["read", "cache_hits"] == 1
    db.execute("DELETE FROM ticks WHERE id < :n", {"n": 10})
    assert db.fetch(sql, {"p": 0.0}, cache_ttl=60) == [(first[0][0] - 10,)]
    db.batch_insert("ticks", [(100000, "S0", 0, 0.5)])
    assert db.fetch(sql, {"p": 0.0}, cache_ttl=60) == [(first[0][0] - 9,)]
    db.bulk_update("ticks", [{"id": 100000, "price": -5.0}])
    assert db.fetch(sql, {"p": 0.0}, cache_ttl=60) == [(first[0][0] - 10,)]


@pytest.mark.parametrize("name", ["ticks; DROP TABLE victim", "ticks--", 'ti"cks', "a.b.c", ""])
def test_identifiers_are_validated_and_nothing_runs(db, name):
    db.execute("CREATE TABLE victim (id integer)")
    with pytest.raises(ValueError, match=r"identifier|dots"):
        db.batch_insert(name, [(1,)], columns=["id"])
    with pytest.raises(ValueError):
        db.batch_insert("victim", [(1,)], columns=[name or "x y"])
    with pytest.raises(ValueError):
        db.materialized_view(name or "x y", "SELECT 1")
    assert db.fetch("SELECT count(*) FROM victim") == [(0,)]


def test_unknown_tables_and_columns_are_named(db):
    with pytest.raises(QueryError, match="nope"):
        db.batch_insert("nope", [(1, 2)])
    db.execute("CREATE TABLE t (id integer PRIMARY KEY)")
    with pytest.raises(QueryError, match="wrong"):
        db.batch_insert("t", [{"wrong": 1}])
    with pytest.raises(QueryError, match="missing_table"):
        db.fetch("SELECT * FROM missing_table")


def test_transaction_retries_the_whole_function_on_transient_errors(db):
    db.execute("CREATE TABLE t (id integer PRIMARY KEY)")
    attempts = []

    def work(conn):
        attempts.append(1)
        conn.exec_driver_sql(f"INSERT INTO t VALUES ({len(attempts)})")
        if len(attempts) == 1:
            raise psycopg.errors.SerializationFailure("could not serialize access")
        return "done"

    assert db.transaction(work) == "done" and len(attempts) == 2
    assert db.fetch("SELECT id FROM t") == [(2,)]  # the failed attempt left nothing
    with pytest.raises(QueryError, match="not transient"):
        db.transaction(lambda conn: (_ for _ in ()).throw(ValueError("not transient")))


def test_stats_per_pool(db):
    db.fetch("SELECT 1")
    frame = db.stats()
    assert list(frame.index) == ["read", "write"]
    expected = {"checkouts", "waits", "wait_s", "in_use", "queries", "slow_queries", "retries"}
    expected |= {"connections_made", "connections_lost"}
    assert expected <= set(frame.columns)
    assert frame.loc["read", "queries"] >= 1


def test_slow_queries_are_logged_with_parameters(db):
    make_ticks(db, 100)
    db.slow_ms = 0.0
    db.fetch("SELECT * FROM ticks WHERE id = :id", {"id": 1})
    entry = db.slow_log[-1]
    assert entry["params"] == {"id": 1} and entry["plan"] is not None


@pytest.mark.servers
def test_prepared_statements_survive_pool_checkouts(settings):
    url = servers.start(settings, redis=False).database_url
    db = QueryRunner(url, pool=PoolConfig(size=1, max_overflow=0))
    try:
        for i in range(10):
            db.fetch("SELECT CAST(:i AS int) + 1", {"i": i})
        rows = db.fetch("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%+ 1%'")
        assert rows[0][0] >= 1
    finally:
        db.close()


@pytest.mark.servers
def test_pool_exhaustion_waits_then_fails_clearly(settings):
    url = servers.start(settings, redis=False).database_url
    db = QueryRunner(url, pool=PoolConfig(size=1, max_overflow=0, timeout=0.5))
    try:
        with (
            db._dbapi("read"),
            pytest.raises(QueryError, match=r"no free read connection within 0.5 s"),
        ):
            db.fetch("SELECT 1")
        assert db.fetch("SELECT 1") == [(1,)]
    finally:
        db.close()


@pytest.mark.servers
def test_a_killed_connection_mid_insert_loses_and_duplicates_nothing(settings):
    url = servers.start(settings, redis=False).database_url
    app = f"perflab-kill-{uuid.uuid4().hex[:8]}"
    db = QueryRunner(f"{url}{'&' if '?' in url else '?'}application_name={app}")
    table = f"kill_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY)")
    killed = threading.Event()

    def rows():
        for i in range(5000):
            if i == 2500 and not killed.is_set():
                with psycopg.connect(url, autocommit=True) as admin:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = %s",
                        (app,),
                    )
                killed.set()
            yield (i,)

    try:
        with pytest.raises(BatchInsertError) as info:
            db.batch_insert(table, rows(), columns=["id"], chunk_size=1000)
        done = info.value.inserted
        assert done == 2000
        assert (
            db.batch_insert(
                table, ((i,) for i in range(done, 5000)), columns=["id"], chunk_size=1000
            )
            == 3000
        )
        assert db.fetch(f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {table}") == [
            (5000, 5000, 0, 4999)
        ]
        assert db.stats().loc["write", "connections_lost"] >= 1
    finally:
        db.execute(f"DROP TABLE {table}")
        db.close()


def test_chunks_of_a_list_move_forward(db):
    db.execute("CREATE TABLE t (id integer PRIMARY KEY)")
    assert db.batch_insert("t", [(i,) for i in range(250)], chunk_size=100) == 250
    assert db.fetch("SELECT count(DISTINCT id) FROM t") == [(250,)]


@pytest.mark.servers
def test_unqualified_tables_live_in_perflab_schema(settings):
    db = QueryRunner()
    try:
        db.execute("CREATE TABLE schema_probe (id integer)")
        where = db.fetch(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'schema_probe'"
        )
        assert where == [(settings.schema,)]
    finally:
        db.execute("DROP TABLE IF EXISTS schema_probe")
        db.close()
