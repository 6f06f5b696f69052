"""Issue 13, items 7-10: identifier checks, index DDL, materialized views and lost backends, on
real PostgreSQL (embedded or system) and SQLite."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pandas as pd
import psycopg
import pytest

from perflab import servers
from perflab.db import IdentifierError, QueryRunner, check_identifier, quote_identifier
from perflab.db.explain import index_ddl
from perflab.db.identifiers import quote_qualified
from perflab.errors import CacheError, ConfigurationError, PerflabError, QueryError
from perflab.settings import Settings, resolve


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.servers), "sqlite"])
def db(request, settings, tmp_path):
    if request.param == "postgresql":
        url = servers.start(settings, redis=False).database_url
        schema = f"perflab_dbf_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in url else "?"
        runner = QueryRunner(f"{url}{sep}options=-csearch_path%3D{schema}")
        yield runner
        runner.close()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    else:
        runner = QueryRunner(f"sqlite:///{tmp_path / 'lab.db'}")
        yield runner
        runner.close()


def make_ticks(db: QueryRunner, n: int = 20_000) -> None:
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
    db.batch_insert("ticks", frame)


def exists(db: QueryRunner, name: str) -> bool:
    if db.postgres:
        return db.fetch("SELECT to_regclass(:n) IS NOT NULL", {"n": name})[0][0]
    return bool(db.fetch("SELECT count(*) FROM sqlite_master WHERE name = :n", {"n": name})[0][0])


# --- 7. identifier checks accept a trailing newline ------------------------------------------

NEWLINE_NAMES = ["ticks\n", "ticks\n\n", "\nticks", "tic\nks"]


@pytest.mark.parametrize("name", NEWLINE_NAMES)
def test_identifiers_with_a_newline_are_rejected(name):
    for check in (check_identifier, quote_identifier, quote_qualified):
        with pytest.raises(IdentifierError, match="not a plain SQL identifier"):
            check(name)
    with pytest.raises(IdentifierError):
        quote_qualified(f"public.{name}")
    assert check_identifier("ticks") == "ticks"


def test_identifier_error_is_one_of_perflab_s_and_still_a_value_error():
    with pytest.raises(IdentifierError) as info:
        check_identifier("ticks\n", "table")
    assert isinstance(info.value, PerflabError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, ConfigurationError) and info.value.name == "table"
    assert info.value.identifier == "ticks\n" and "'ticks\\n'" in str(info.value)


@pytest.mark.parametrize("schema", ["perflab\n", "perflab\n\n"])
def test_perflab_schema_with_a_trailing_newline_is_rejected(schema):
    with pytest.raises(ConfigurationError, match="PERFLAB_SCHEMA"):
        Settings(schema=schema)
    with pytest.raises(ConfigurationError, match="PERFLAB_SCHEMA"):
        resolve({}, schema=schema)


@pytest.mark.parametrize("field", ["table", "schema"])
def test_database_tier_names_with_a_trailing_newline_are_rejected(field, tmp_path):
    from perflab.cache import DatabaseTier

    # schema applies to PostgreSQL only; the check must come before any connection is made
    url = "postgresql://nobody@127.0.0.1:1/none" if field == "schema" else None
    url = url or f"sqlite:///{tmp_path / 'cache.db'}"
    with pytest.raises(CacheError, match="not a plain lower-case SQL identifier"):
        DatabaseTier(url, **{field: "perflab_cache\n"})


def test_runner_rejects_a_newline_table_and_runs_nothing(db):
    db.execute("CREATE TABLE victim (id integer)")
    with pytest.raises(IdentifierError, match="nothing was executed"):
        db.batch_insert("victim\n", [(1,)], columns=["id"])
    with pytest.raises(IdentifierError):
        db.batch_insert("victim", [(1,)], columns=["id\n"])
    with pytest.raises(IdentifierError):
        db.bulk_update("victim\n", [{"id": 1}])
    with pytest.raises(IdentifierError):
        db.materialized_view("victim\n", "SELECT 1")
    assert db.fetch("SELECT count(*) FROM victim") == [(0,)]


# --- 8. apply_index executes suggestion.ddl verbatim ------------------------------------------


def test_index_ddl_is_built_from_validated_parts():
    assert index_ddl("ticks", ("symbol", "ts")) == (
        'CREATE INDEX IF NOT EXISTS "ix_ticks_symbol_ts" ON "ticks" ("symbol", "ts")'
    )
    assert index_ddl("lab.ticks", ["symbol"]) == (
        'CREATE INDEX IF NOT EXISTS "ix_ticks_symbol" ON "lab"."ticks" ("symbol")'
    )
    for table, columns in [
        ("ticks; DROP TABLE canary", ("symbol",)),
        ("ticks", ("symbol); DROP TABLE canary; --",)),
        ("ticks", "symbol"),  # a string is not a list of columns
        ("ticks", ()),
        ("ticks\n", ("symbol",)),
    ]:
        with pytest.raises(IdentifierError, match="nothing was executed"):
            index_ddl(table, columns)


SQL = "SELECT * FROM ticks WHERE symbol = :s AND ts >= :t"
PARAMS = {"s": "S7", "t": 5_000_000}


def test_apply_index_never_runs_a_forged_ddl(db):
    make_ticks(db)
    db.execute("CREATE TABLE canary (id integer)")
    [suggestion] = db.suggest_indexes(SQL, PARAMS)
    forged = dataclasses.replace(suggestion, ddl="DROP TABLE canary")
    with pytest.raises(QueryError, match="nothing was executed") as info:
        db.apply_index(forged, verify=False)
    assert info.value.sql == "DROP TABLE canary"
    bad_table = dataclasses.replace(suggestion, table="canary; DROP TABLE canary")
    with pytest.raises(IdentifierError):
        db.apply_index(bad_table, verify=False)
    bad_column = dataclasses.replace(suggestion, columns=("id) ; DROP TABLE canary; --",))
    with pytest.raises(IdentifierError):
        db.apply_index(bad_column, verify=False)
    assert exists(db, "canary") and not exists(db, "ix_ticks_symbol_ts")
    # the genuine suggestion runs the statement built from its parts, and says so
    result = db.apply_index(suggestion, verify=False)
    assert result["index"] == suggestion.statement() == suggestion.ddl
    assert exists(db, "ix_ticks_symbol_ts") and exists(db, "canary")


# --- 9. materialized_view(unique_on=[bad]) creates the view, then rejects the column ----------


@pytest.mark.parametrize(
    "unique_on", [["symbol; DROP TABLE ticks"], ["symbol", "n\n"], ['sym"bol'], "symbol"]
)
def test_materialized_view_validates_everything_before_creating(db, unique_on):
    make_ticks(db, 100)
    mv = db.materialized_view("by_symbol", "SELECT symbol, count(*) AS n FROM ticks GROUP BY 1")
    with pytest.raises(IdentifierError, match="nothing was executed"):
        mv.create(unique_on=unique_on)
    assert not exists(db, "by_symbol")  # true to the message: nothing was executed
    mv.create(unique_on=["symbol"])
    distinct = db.fetch("SELECT count(DISTINCT symbol) FROM ticks")[0][0]
    assert exists(db, "by_symbol") and len(mv.query()) == distinct
    mv.drop()


# --- 10. bulk_update raises raw psycopg errors when its backend is terminated -----------------


@pytest.mark.servers
def test_bulk_update_on_a_terminated_backend_raises_query_error_and_recovers(settings):
    url = servers.start(settings, redis=False).database_url
    app = f"perflab-kill-{uuid.uuid4().hex[:8]}"
    db = QueryRunner(f"{url}{'&' if '?' in url else '?'}application_name={app}")
    table = f"bu_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, v float)")
    db.batch_insert(table, [(i, 0.0) for i in range(5000)])
    db.columns(table)  # a second pooled write connection, killed as well

    def rows():
        for i in range(5000):
            if i == 2500:
                with psycopg.connect(url, autocommit=True) as admin:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = %s AND pid <> pg_backend_pid()",
                        (app,),
                    )
            yield {"id": i, "v": 1.0}

    try:
        with pytest.raises(QueryError) as info:
            db.bulk_update(table, rows())
        err = info.value
        assert type(err) is QueryError and "\n" not in str(err)
        assert "connection lost" in str(err) and err.sql and "_perflab_update" in err.sql
        assert isinstance(err.__cause__, psycopg.Error)
        # the runner reconnects: the next bulk_update and reads work, and nothing was half-done
        assert db.bulk_update(table, [{"id": 1, "v": 2.0}]) == 1
        assert db.fetch(f"SELECT count(*) FROM {table} WHERE v = 1.0") == [(0,)]
        assert db.stats().loc["write", "connections_lost"] >= 1
    finally:
        db.execute(f"DROP TABLE {table}")
        db.close()


@pytest.mark.servers
def test_every_runner_call_on_a_terminated_backend_raises_query_error(settings):
    url = servers.start(settings, redis=False).database_url
    app = f"perflab-kill-{uuid.uuid4().hex[:8]}"
    db = QueryRunner(f"{url}{'&' if '?' in url else '?'}application_name={app}", retries=0)
    table = f"kw_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, v float)")
    calls = {
        "fetch": lambda: db.fetch(f"SELECT count(*) FROM {table}"),
        "execute": lambda: db.execute(f"UPDATE {table} SET v = 1"),
        "batch_insert": lambda: db.batch_insert(table, [(1, 1.0)], columns=["id", "v"]),
        "bulk_update": lambda: db.bulk_update(table, [{"id": 1, "v": 2.0}]),
    }

    def survives(call):
        try:
            call()
        except QueryError as err:  # raw psycopg errors are what this test rules out
            assert "\n" not in str(err) and err.sql and "connection lost" in str(err)
        return call()  # and the runner is usable again straight away

    try:
        for call in calls.values():
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (app,),
                )
            survives(call)
            survives(lambda: db.fetch("SELECT 1"))  # both pools live again for the next kill
            survives(lambda: db.execute("SELECT 1"))
    finally:
        db.execute(f"DROP TABLE {table}")
        db.close()
