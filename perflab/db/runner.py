"""The pooled query runner on SQLAlchemy 2 + psycopg 3 (PostgreSQL) or sqlite3.

Two pools (read, write), AUTOCOMMIT with no rollback on return so psycopg's prepared statements
survive checkouts (a default pool throws them away: 2.7x slower lookups, see design.md). The hot
read path (``fetch``) compiles each statement once and runs it on the DBAPI connection with
``prepare=True``; ``query`` wraps it in a DataFrame for notebooks.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import json
import logging
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa

from perflab.cache.kept import KeptConnection
from perflab.db.explain import IndexSuggestion, Plan, advise, from_postgres, from_sqlite
from perflab.db.identifiers import (
    IdentifierError,
    check_identifier,
    quote_identifier,
    quote_qualified,
)
from perflab.errors import QueryError

__all__ = ["BatchInsertError", "MaterializedView", "PoolConfig", "QueryRunner"]

log = logging.getLogger("perflab.db")
_WRITES = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|ALTER\s+TABLE|DROP\s+TABLE"
    r"(?:\s+IF\s+EXISTS)?|REFRESH\s+MATERIALIZED\s+VIEW(?:\s+CONCURRENTLY)?)\s+\"?(\w+)\"?",
    re.IGNORECASE,
)
_READS = re.compile(r"\b(?:FROM|JOIN)\s+\"?(\w+)\"?", re.IGNORECASE)
_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "08000", "08003", "08006"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolConfig:
    """Size and timeouts of one pool."""

    size: int = 5
    max_overflow: int = 10
    timeout: float = 30.0  # seconds to wait for a free connection
    recycle: float = 1800.0
    connect_timeout: float = 5.0
    statement_timeout_ms: int | None = None  # PostgreSQL only


class BatchInsertError(QueryError):
    """A chunked ``batch_insert`` failed; ``inserted`` rows (whole chunks) were committed, so a
    caller resumes from row ``inserted`` without duplicates."""

    def __init__(self, message: str, *, inserted: int) -> None:
        super().__init__(message)
        self.inserted = inserted


class _PoolStats:
    __slots__ = ("checkouts", "lost", "made", "queries", "retries", "slow", "wait_s", "waits")

    def __init__(self) -> None:
        self.checkouts = self.waits = self.queries = self.slow = self.retries = 0
        self.made = self.lost = 0
        self.wait_s = 0.0

    def watch(self, engine: sa.Engine) -> None:
        """Count connections the pool opens and the ones it throws away as broken."""

        def made(*_: Any) -> None:
            self.made += 1

        def lost(*_: Any) -> None:
            self.lost += 1

        sa.event.listen(engine, "connect", made)
        sa.event.listen(engine, "invalidate", lost)


class QueryRunner:
    """Queries for notebooks (``query`` → DataFrame) and for hot paths (``fetch`` → tuples).

    ``url``: the write (primary) database, default the lab's; ``read_url``: a replica for reads
    (default: the same server, its own pool). ``cache``: a ``TieredCache`` for query results, or
    True for an in-memory one. Parameters are named (``:symbol``) on every dialect.
    """

    def __init__(
        self,
        url: str | None = None,
        read_url: str | None = None,
        pool: PoolConfig | None = None,
        cache: Any = None,
        *,
        slow_ms: float = 100.0,
        retries: int = 3,
    ) -> None:
        from perflab import servers
        from perflab.settings import resolve, sqlalchemy_url

        settings = resolve()
        if url is None:
            endpoints = servers.start(settings, redis=False)
            url, read_url = endpoints.database_url, read_url or endpoints.read_database_url
        self.url, self.read_url = url, read_url or url
        self.pool = pool or PoolConfig()
        self.postgres = sqlalchemy_url(url).startswith("postgresql")
        # PERFLAB_SCHEMA: unqualified tables live in that schema (tests, shared servers)
        self.schema = settings.schema if self.postgres and "options=" not in url else None
        self.dialect = "postgresql" if self.postgres else "sqlite"
        if self.schema not in (None, "public"):
            setup = sa.create_engine(sqlalchemy_url(self.url))
            try:
                with setup.begin() as conn:
                    conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            finally:
                setup.dispose()
        self.write_engine = self._engine(sqlalchemy_url(self.url))
        self.read_engine = self._engine(sqlalchemy_url(self.read_url))
        self._stats = {"read": _PoolStats(), "write": _PoolStats()}
        self._stats["read"].watch(self.read_engine)
        self._stats["write"].watch(self.write_engine)
        # each pool keeps one connection for the hot path (a checkout costs as much as a lookup)
        self._kept = {
            "read": KeptConnection(self.read_engine),
            "write": KeptConnection(self.write_engine),
        }
        self.slow_ms, self.retries = slow_ms, retries
        self.slow_log: collections.deque[dict] = collections.deque(maxlen=200)
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}
        self._compile_lock = threading.Lock()
        if cache is True:
            from perflab.cache import MemoryTier, TieredCache

            cache = TieredCache([MemoryTier(10_000)], default_ttl=60, coherence=False)
        self.cache = cache
        self._cache_hits = self._cache_misses = 0

    def _engine(self, url: str) -> sa.Engine:
        p = self.pool
        options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}
        if url.startswith("postgresql"):
            args: dict[str, Any] = {"connect_timeout": max(1, int(p.connect_timeout))}
            settings = []
            if self.schema not in (None, "public"):
                settings.append(f"-c search_path={quote_identifier(self.schema)},public")
            if p.statement_timeout_ms:
                settings.append(f"-c statement_timeout={int(p.statement_timeout_ms)}")
            if settings:
                args["options"] = " ".join(settings)
            options.update(
                pool_size=p.size,
                max_overflow=p.max_overflow,
                pool_timeout=p.timeout,
                pool_recycle=p.recycle,
                skip_autocommit_rollback=True,  # keep psycopg's prepared statements
                connect_args=args,
            )
        elif sa.engine.make_url(url).database not in (None, "", ":memory:"):
            # a file database gets a real pool; :memory: keeps SQLAlchemy's per-thread default
            options.update(pool_size=p.size, max_overflow=p.max_overflow, pool_timeout=p.timeout)
        return sa.create_engine(url, **options)

    # ------------------------------------------------------------------------------------------
    # connections

    @contextlib.contextmanager
    def _dbapi(self, role: str, what: str = "a statement") -> Iterator[Any]:
        """A pooled DBAPI connection (psycopg / sqlite3), timed for the pool stats.

        Every statement the runner sends goes through here, so this is where driver errors
        become QueryError (first line of the driver's message, ``what`` attached as ``sql``;
        the driver's error stays as ``__cause__``). A connection the server dropped (backend
        terminated, server restarted) is closed and the pool replaced, so the next call gets a
        live connection instead of reading a stale FATAL from a dead one."""
        stats = self._stats[role]
        t0 = time.perf_counter()
        try:
            with self._kept[role].connection() as conn:
                waited = time.perf_counter() - t0
                stats.checkouts += 1
                if waited > 0.001:
                    stats.waits += 1
                    stats.wait_s += waited
                try:
                    yield conn
                except Exception as err:
                    if _lost(err):
                        with contextlib.suppress(Exception):  # already gone: closing is tidying
                            conn.driver_connection.close()
                        # the server dropped the others too (restart, terminated backends):
                        # a new pool, so no later checkout gets a dead one
                        engine = self.read_engine if role == "read" else self.write_engine
                        engine.dispose(close=False)
                    raise
        except sa.exc.TimeoutError as err:
            raise QueryError(
                f"no free {role} connection within {self.pool.timeout:g} s (pool size "
                f"{self.pool.size} + overflow {self.pool.max_overflow}); raise PoolConfig.size "
                "or hold connections for less time"
            ) from err
        except QueryError:
            raise
        except Exception as err:  # any driver or pool error: one error type, the SQL attached
            raise _query_error(err, what) from err

    def _compile(self, sql: str) -> tuple[str, tuple[str, ...] | None]:
        """Named ``:params`` → the driver's placeholders, once per statement text."""
        found = self._compiled.get(sql)
        if found is None:
            compiled = sa.text(sql).compile(dialect=self.write_engine.dialect)
            names = tuple(compiled.positiontup) if compiled.positiontup else None
            found = (compiled.string, names)
            with self._compile_lock:
                self._compiled[sql] = found
        return found

    def _args(self, sql: str, params: dict | None) -> tuple[str, Any]:
        text, names = self._compile(sql)
        params = params or {}
        if names is not None:  # positional driver (sqlite3 qmark)
            try:
                return text, tuple(params[n] for n in names)
            except KeyError as err:
                raise QueryError(f"missing parameter {err.args[0]!r} for: {sql}", sql=sql) from None
        return text, params

    def _run(self, role: str, sql: str, params: dict | None, fetch: bool) -> tuple[Any, Any]:
        text, args = self._args(sql, params)
        stats = self._stats[role]
        attempts = self.retries + 1 if role == "read" else 1  # never retry a single write
        for attempt in range(attempts):
            t0 = time.perf_counter()
            try:
                with self._dbapi(role, sql) as conn:
                    if self.postgres:
                        cur = conn.driver_connection.execute(text, args, prepare=_preparable(text))
                    else:
                        cur = conn.cursor()
                        cur.execute(text, args)
                    result = (cur.fetchall(), cur.description) if fetch else (cur.rowcount, None)
                    cur.close()
                break
            except Exception as err:  # classified below: transient retried, others raised
                if attempt + 1 < attempts and _transient(err):
                    stats.retries += 1
                    time.sleep(min(1.0, 0.05 * 2**attempt) * (1 + random.random()))
                    continue
                raise _query_error(err, sql) from err
        elapsed_ms = (time.perf_counter() - t0) * 1e3
        stats.queries += 1
        if elapsed_ms > self.slow_ms:
            stats.slow += 1
            self._record_slow(sql, params, elapsed_ms)
        return result

    def _record_slow(self, sql: str, params: dict | None, elapsed_ms: float) -> None:
        entry = {"sql": sql, "params": params, "ms": elapsed_ms, "at": time.time(), "plan": None}
        if sql.lstrip().upper().startswith("SELECT"):
            with contextlib.suppress(QueryError):
                entry["plan"] = self.explain(sql, params, analyze=False).to_frame()
        self.slow_log.append(entry)
        log.info("slow query (%.1f ms): %s", elapsed_ms, sql)

    # ------------------------------------------------------------------------------------------
    # reads

    def _cache_key(self, role: str, sql: str, params: dict | None) -> str:
        spelled = json.dumps([sql, params or {}], sort_keys=True, default=str)
        return f"q:{role}:{hashlib.sha256(spelled.encode()).hexdigest()}"

    def fetch(self, sql: str, params: dict | None = None, cache_ttl: float | None = None) -> list:
        """Rows (tuples) from the read pool; with ``cache_ttl``, from the query cache."""
        return self._read(sql, params, cache_ttl)[0]

    def query(
        self, sql: str, params: dict | None = None, cache_ttl: float | None = None
    ) -> pd.DataFrame:
        """A DataFrame from the read pool (for notebooks; ``fetch`` is the fast path)."""
        rows, columns = self._read(sql, params, cache_ttl)
        return pd.DataFrame.from_records(rows, columns=columns)

    def _read(self, sql: str, params: dict | None, cache_ttl: float | None) -> tuple[list, list]:
        key = None
        if cache_ttl is not None:
            if self.cache is None:
                raise QueryError("cache_ttl given but the runner has no cache (cache=True)")
            key = self._cache_key("read", sql, params)
            hit = self.cache.get(key)
            if hit is not None:
                self._cache_hits += 1
                return [tuple(r) for r in hit[0]], hit[1]
            self._cache_misses += 1
        rows, description = self._run("read", sql, params, fetch=True)
        columns = [d[0] for d in description] if description else []
        if key is not None:
            tags = [f"table:{t.lower()}" for t in _READS.findall(sql)]
            self.cache.set(key, ([list(r) for r in rows], columns), ttl=cache_ttl, tags=tags)
        return rows, columns

    # ------------------------------------------------------------------------------------------
    # writes

    def execute(self, sql: str, params: dict | None = None) -> int:
        """Run one statement on the write pool; returns its rowcount. Never retried. Cached
        queries reading a table it writes are invalidated."""
        count = self._run("write", sql, params, fetch=False)[0]
        for table in _WRITES.findall(sql):
            self.invalidate(table)
        return count

    def invalidate(self, table: str) -> int:
        """Drop cached queries that read ``table``."""
        if self.cache is None:
            return 0
        return self.cache.invalidate_tags(f"table:{table.lower()}")

    def transaction(self, fn: Callable[[sa.Connection], Any], retries: int | None = None) -> Any:
        """Run ``fn(connection)`` in one transaction, retrying the *whole* function on transient
        errors (serialization failure, deadlock, lost connection). ``fn`` must be safe to
        repeat: it sees no effects of a failed attempt."""
        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                with self.write_engine.connect() as conn:
                    level = "READ COMMITTED" if self.postgres else "SERIALIZABLE"
                    conn = conn.execution_options(isolation_level=level)
                    with conn.begin():
                        return fn(conn)
            except Exception as err:  # classified below: transient retried, others raised
                if attempt < retries and _transient(err):
                    self._stats["write"].retries += 1
                    time.sleep(min(1.0, 0.05 * 2**attempt) * (1 + random.random()))
                    continue
                raise _query_error(err, getattr(fn, "__name__", "transaction")) from err
        raise AssertionError("unreachable")

    def columns(self, table: str) -> list[str]:
        """The table's columns, in order; QueryError naming the table if it doesn't exist."""
        quoted = quote_qualified(table)
        inspector = sa.inspect(self.write_engine)
        schema, _, name = table.rpartition(".")
        try:
            cols = [c["name"] for c in inspector.get_columns(name, schema=schema or None)]
        except sa.exc.NoSuchTableError:
            cols = []
        if not cols:
            raise QueryError(f"no table {table!r} ({quoted}) in the database")
        return cols

    def _rows(
        self, rows: Any, columns: list[str] | None, table: str
    ) -> tuple[list[str], Iterator[tuple]]:
        """(columns, iterator of tuples) from a DataFrame, tuples or dicts, streamed."""
        if isinstance(rows, pd.DataFrame):
            cols = list(columns or rows.columns)
            return cols, rows[cols].itertuples(index=False, name=None)
        if isinstance(rows, list) and rows and isinstance(rows[0], tuple):
            return list(columns or self.columns(table)), rows  # as given: no per-row copying
        iterator = iter(rows)
        try:
            first = next(iterator)
        except StopIteration:
            return list(columns or []), iter(())
        if isinstance(first, dict):
            cols = list(columns or first.keys())

            def tuples() -> Iterator[tuple]:
                for row in _chain(first, iterator):
                    yield tuple(row[c] for c in cols)

            return cols, tuples()
        cols = list(columns or self.columns(table))
        return cols, _chain(tuple(first), (tuple(r) for r in iterator))

    def batch_insert(
        self,
        table: str,
        rows: Any,
        columns: list[str] | None = None,
        chunk_size: int | None = None,
    ) -> int:
        """Insert rows: binary COPY on PostgreSQL, one ``executemany`` on SQLite. One transaction
        by default (all or nothing); with ``chunk_size``, a commit per chunk, and on failure a
        BatchInsertError whose ``inserted`` says where to resume."""
        target = quote_qualified(table)
        cols, tuples = self._rows(rows, columns, table)
        for c in cols:
            check_identifier(c, "column")
        if not cols:
            return 0
        column_list = ", ".join(quote_identifier(c, "column") for c in cols)
        inserted = 0
        chunks = _chunks(tuples, chunk_size) if chunk_size else [tuples]
        try:
            for chunk in chunks:
                with self._dbapi("write", f"batch_insert into {table}") as conn:
                    if self.postgres:
                        inserted += self._copy(
                            conn.driver_connection, target, column_list, cols, table, chunk
                        )
                    else:
                        inserted += self._executemany(
                            conn.driver_connection, target, column_list, cols, chunk
                        )
        except Exception as err:  # report how far the committed chunks got, then raise
            if chunk_size:
                raise BatchInsertError(
                    f"batch_insert into {table}: failed after {inserted} committed rows "
                    f"({_query_error(err, table)}); resume from row {inserted}",
                    inserted=inserted,
                ) from err
            raise _query_error(err, f"batch_insert into {table}") from err
        self.invalidate(table)
        return inserted

    def _copy(
        self, conn: Any, target: str, column_list: str, cols: list[str], table: str, chunk: Iterable
    ) -> int:
        types = self._pg_types(conn, table, cols)
        count = 0
        statement = f"COPY {target} ({column_list}) FROM STDIN (FORMAT BINARY)"
        with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(types)
            write = copy.write_row
            if isinstance(chunk, list):
                for row in chunk:
                    write(row)
                count = len(chunk)
            else:
                for count, row in enumerate(chunk, 1):  # noqa: B007 - the count is the result
                    write(row)
        return count

    def _pg_types(self, conn: Any, table: str, cols: list[str]) -> list[str]:
        schema, _, name = table.rpartition(".")
        rows = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
            (f'"{schema}"."{name}"' if schema else f'"{name}"',),
        ).fetchall()
        known = dict(rows)
        if not known:
            raise QueryError(f"no table {table!r} in the database")
        missing = [c for c in cols if c not in known]
        if missing:
            raise QueryError(
                f"table {table!r} has no column {missing[0]!r}; it has {sorted(known)}"
            )
        return [known[c] for c in cols]

    def _executemany(
        self, conn: Any, target: str, column_list: str, cols: list[str], chunk: Iterable
    ) -> int:
        marks = ", ".join("?" for _ in cols)
        batch = list(chunk)
        conn.execute("BEGIN")
        try:
            conn.executemany(f"INSERT INTO {target} ({column_list}) VALUES ({marks})", batch)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(batch)

    def bulk_update(self, table: str, rows: Any, key: str = "id") -> int:
        """Update many rows by ``key``: COPY into a temporary table, then one UPDATE … FROM."""
        target = quote_qualified(table)
        cols, tuples = self._rows(rows, None, table)
        if key not in cols:
            raise QueryError(f"bulk_update of {table}: the rows have no key column {key!r}")
        for c in cols:
            check_identifier(c, "column")
        qkey = quote_identifier(key, "column")
        sets = ", ".join(
            f"{quote_identifier(c)} = s.{quote_identifier(c)}" for c in cols if c != key
        )
        column_list = ", ".join(quote_identifier(c) for c in cols)
        step = f"bulk_update of {table}"  # the statement under way, for the error
        with self._dbapi("write", step) as conn:
            db = conn.driver_connection
            try:
                if self.postgres:
                    with db.transaction():
                        step = f"CREATE TEMP TABLE _perflab_update (LIKE {target}) ON COMMIT DROP"
                        db.execute(step)
                        types = self._pg_types(db, table, cols)
                        step = f"COPY _perflab_update ({column_list}) FROM STDIN (FORMAT BINARY)"
                        with db.cursor() as cur, cur.copy(step) as copy:
                            copy.set_types(types)
                            for row in tuples:
                                copy.write_row(row)
                        step = (
                            f"UPDATE {target} AS t SET {sets} FROM _perflab_update AS s "
                            f"WHERE t.{qkey} = s.{qkey}"
                        )
                        count = db.execute(step).rowcount
                        step = f"COMMIT (bulk_update of {table})"
                else:
                    db.execute("BEGIN")
                    try:
                        empty_copy = f"SELECT {column_list} FROM {target} WHERE 0"
                        step = f"CREATE TEMP TABLE _perflab_update AS {empty_copy}"
                        db.execute(step)
                        marks = ", ".join("?" for _ in cols)
                        step = f"INSERT INTO _perflab_update ({column_list}) VALUES ({marks})"
                        db.executemany(step, list(tuples))
                        matched = f"{target}.{qkey} = s.{qkey}"
                        step = f"UPDATE {target} SET {sets} FROM _perflab_update AS s "
                        step += f"WHERE {matched}"
                        count = db.execute(step).rowcount
                        db.execute("DROP TABLE _perflab_update")
                        db.execute("COMMIT")
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
            except QueryError:
                raise
            except Exception as err:  # named by the statement that failed
                raise _query_error(err, step) from err
        self.invalidate(table)
        return count

    # ------------------------------------------------------------------------------------------
    # materialized views, plans, indexes

    def materialized_view(self, name: str, sql: str) -> MaterializedView:
        return MaterializedView(self, name, sql)

    def explain(self, sql: str, params: dict | None = None, analyze: bool = True) -> Plan:
        """The plan as data. PostgreSQL: EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) — ANALYZE runs
        the statement. SQLite: EXPLAIN QUERY PLAN in the same shape."""
        if self.postgres:
            options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
            rows, _ = self._run("read", f"EXPLAIN ({options}) {sql}", params, fetch=True)
            doc = rows[0][0]
            return from_postgres(json.loads(doc) if isinstance(doc, str) else doc, sql, params)
        text, args = self._args(f"EXPLAIN QUERY PLAN {sql}", params)
        # A fresh connection: a pooled one may hold this EXPLAIN prepared before an index was
        # created, and stepping an EXPLAIN never notices the schema changed (it reads nothing).
        path = self.read_engine.url.database or ":memory:"
        with contextlib.closing(sqlite3.connect(path)) as db:
            rows = db.execute(text, args).fetchall()
        return from_sqlite(rows, sql, params)

    def suggest_indexes(self, sql: str, params: dict | None = None) -> list[IndexSuggestion]:
        """Indexes that would spare the plan's wasteful sequential scans, with the reason."""
        return advise(self.explain(sql, params))

    def apply_index(
        self, suggestion: IndexSuggestion, verify: bool = True, repeat: int = 5
    ) -> dict:
        """Create the suggested index; with ``verify``, time the query before and after
        (median of ``repeat`` runs) and report the plans' scan types."""
        # The statement is built here from the validated table and column names; the
        # suggestion's ``ddl`` text is never executed (a forged one is refused, nothing runs).
        ddl = suggestion.statement()
        if suggestion.ddl.strip() != ddl:
            raise QueryError(
                f"apply_index: the suggestion's ddl {suggestion.ddl!r} is not the index on "
                f"{suggestion.table} ({', '.join(suggestion.columns)}) it names, which is "
                f"{ddl!r}; nothing was executed. Use a suggestion from suggest_indexes, or "
                "give ddl=index_ddl(table, columns)",
                sql=suggestion.ddl,
            )
        before = self._time(suggestion.sql, suggestion.params, repeat) if verify else None
        self.execute(ddl)
        if self.postgres:
            self.execute(f"ANALYZE {quote_qualified(suggestion.table)}")
        if not verify:
            return {"index": ddl}
        after = self._time(suggestion.sql, suggestion.params, repeat)
        plan = self.explain(suggestion.sql, suggestion.params)
        return {
            "index": ddl,
            "before_ms": before,
            "after_ms": after,
            "speedup": before / after if after else float("inf"),
            "plan_after": [n.node_type for n in plan.nodes()],
        }

    def _time(self, sql: str, params: dict | None, repeat: int) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self._run("read", sql, params, fetch=True)
            times.append((time.perf_counter() - t0) * 1e3)
        return sorted(times)[len(times) // 2]

    # ------------------------------------------------------------------------------------------

    def stats(self) -> pd.DataFrame:
        """One row per pool: checkouts, waits, wait time, connections in use/open, queries,
        slow queries, retries, query-cache hits and misses."""
        rows = []
        for role, engine in (("read", self.read_engine), ("write", self.write_engine)):
            s, p = self._stats[role], engine.pool
            rows.append(
                {
                    "pool": role,
                    "checkouts": s.checkouts,
                    "waits": s.waits,
                    "wait_s": s.wait_s,
                    "in_use": p.checkedout() if hasattr(p, "checkedout") else None,
                    "open": p.checkedin() + p.checkedout() if hasattr(p, "checkedin") else None,
                    "size": self.pool.size,
                    "connections_made": s.made,
                    "connections_lost": s.lost,
                    "queries": s.queries,
                    "slow_queries": s.slow,
                    "retries": s.retries,
                    "cache_hits": self._cache_hits if role == "read" else 0,
                    "cache_misses": self._cache_misses if role == "read" else 0,
                }
            )
        return pd.DataFrame(rows).set_index("pool")

    def close(self) -> None:
        for kept in self._kept.values():
            kept.close()
        self.read_engine.dispose()
        self.write_engine.dispose()
        if self.cache is not None and hasattr(self.cache, "close"):
            self.cache.close()

    def __enter__(self) -> QueryRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MaterializedView:
    """A named, stored query: native on PostgreSQL; on SQLite a table rebuilt by ``refresh``."""

    def __init__(self, runner: QueryRunner, name: str, sql: str) -> None:
        self.runner, self.name, self.sql = runner, check_identifier(name, "view"), sql
        self.quoted = quote_identifier(name, "view")

    def create(self, unique_on: list[str] | None = None) -> None:
        """Create (and fill) the view; ``unique_on`` adds the unique index that lets PostgreSQL
        refresh it concurrently."""
        r = self.runner
        # every statement is built (and every name validated) before the first one runs
        unique = None
        if unique_on:
            if isinstance(unique_on, str):
                raise IdentifierError(
                    f"view {self.name}: unique_on must be a list of column names, got the "
                    f"string {unique_on!r} (write [{unique_on!r}]); nothing was executed",
                    name="unique_on",
                    identifier=unique_on,
                )
            cols = ", ".join(quote_identifier(c, "column") for c in unique_on)
            index = quote_identifier(f"ux_{self.name}"[:63], "index")
            unique = f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {self.quoted} ({cols})"
        kind = "MATERIALIZED VIEW" if r.postgres else "TABLE"
        r.execute(f"CREATE {kind} IF NOT EXISTS {self.quoted} AS {self.sql}")
        if unique is not None:
            r.execute(unique)

    def refresh(self, concurrently: bool = False) -> None:
        r = self.runner
        if r.postgres:
            how = " CONCURRENTLY" if concurrently else ""
            r.execute(f"REFRESH MATERIALIZED VIEW{how} {self.quoted}")
        else:

            def rebuild(conn: sa.Connection) -> None:
                conn.exec_driver_sql(f"DELETE FROM {self.quoted}")
                conn.exec_driver_sql(f"INSERT INTO {self.quoted} {self.sql}")

            r.transaction(rebuild)
        r.invalidate(self.name)

    def query(
        self, where: str = "", params: dict | None = None, cache_ttl: float | None = None
    ) -> pd.DataFrame:
        """Rows of the view; ``where`` is a condition with named parameters (values bound)."""
        sql = f"SELECT * FROM {self.quoted}" + (f" WHERE {where}" if where else "")
        return self.runner.query(sql, params, cache_ttl)

    def drop(self) -> None:
        kind = "MATERIALIZED VIEW" if self.runner.postgres else "TABLE"
        self.runner.execute(f"DROP {kind} IF EXISTS {self.quoted}")


def _chain(first: Any, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _chunks(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    if size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {size}")
    rows = iter(rows)  # one iterator across chunks (a list would restart each time)
    while True:
        chunk = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= size:
                break
        if not chunk:
            return
        yield chunk


def _preparable(sql: str) -> bool | None:
    """Prepare queries explicitly (they repeat); leave utility statements to psycopg."""
    return (
        True
        if sql.lstrip()[:6].upper() in ("SELECT", "WITH", "VALUES", "INSERT", "UPDATE", "DELETE")
        else None
    )


def _sqlstate(err: BaseException) -> str | None:
    while err is not None:
        state = getattr(err, "sqlstate", None) or getattr(
            getattr(err, "orig", None), "sqlstate", None
        )
        if state:
            return state
        err = err.__cause__ or err.__context__
    return None


def _transient(err: BaseException) -> bool:
    """Lost connections, serialization failures and deadlocks: worth another attempt."""
    import sqlite3

    import psycopg

    if isinstance(err, QueryError) and err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, sa.exc.DBAPIError):
        if err.connection_invalidated:
            return True
        err = err.orig or err
    if _sqlstate(err) in _TRANSIENT_SQLSTATES:
        return True
    if isinstance(err, sqlite3.OperationalError):
        return "locked" in str(err) or "busy" in str(err)
    # psycopg: a lost or refused connection (errors with an SQLSTATE were judged above)
    return isinstance(err, psycopg.OperationalError) and _sqlstate(err) is None


def _lost(err: BaseException) -> bool:
    """The server dropped the connection: backend terminated (57P01-57P03), connection
    failure (class 08), or a psycopg OperationalError without an SQLSTATE (socket gone)."""
    import psycopg

    if isinstance(err, QueryError) and err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, sa.exc.DBAPIError):
        if err.connection_invalidated:
            return True
        err = err.orig or err
    state = _sqlstate(err)
    if state is not None:
        return state in ("57P01", "57P02", "57P03") or state.startswith("08")
    return isinstance(err, psycopg.OperationalError)


def _query_error(err: BaseException, sql: str) -> QueryError:
    """The one QueryError for a driver error: its first line (psycopg's are multi-line), what
    to do when the connection was lost, and the statement."""
    if isinstance(err, QueryError):
        return err
    lines = str(getattr(err, "orig", None) or err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    if _lost(err):
        text += " (connection lost; the runner reconnects on the next call)"
    return QueryError(f"{text} — in: {sql}", sql=sql)
