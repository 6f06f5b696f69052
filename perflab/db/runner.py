"""The pooled query runner on SQLAlchemy 2 + psycopg 3 (PostgreSQL) or sqlite3.

Two pools (read, write), AUTOCOMMIT with no rollback on return so psycopg's prepared statements
survive checkouts (a default pool throws them away: 2.7x slower lookups, see design.md). The hot
read path (``fetch``) compiles each statement once and runs it on the DBAPI connection with
``prepare=True``; ``query`` wraps it in a DataFrame for notebooks.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa

from perflab.cache import KeptConnection
from perflab.db import bulk
from perflab.db.binding import Statements
from perflab.db.bulk import BatchInsertError
from perflab.db.identifiers import quote_identifier, quote_qualified
from perflab.db.indexes import IndexAdvice, median_ms
from perflab.db.pools import PoolConfig, PoolStats
from perflab.db.querycache import QueryCache, cache_key, tables_written
from perflab.db.retry import backoff, lost, query_error, transient
from perflab.db.views import MaterializedView
from perflab.errors import QueryError
from perflab.sql import make_engine, postgres_options

__all__ = ["BatchInsertError", "MaterializedView", "PoolConfig", "QueryRunner", "median_ms"]

log = logging.getLogger("perflab.db")


class QueryRunner(IndexAdvice):
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
        from perflab.settings import resolve
        from perflab.urls import is_postgres

        settings = resolve()
        if url is None:
            endpoints = servers.start(settings, redis=False)
            url, read_url = endpoints.database_url, read_url or endpoints.read_database_url
        self.url, self.read_url = url, read_url or url
        self.pool = pool or PoolConfig()
        self.postgres = is_postgres(url)
        # PERFLAB_SCHEMA: unqualified tables live in that schema (tests, shared servers)
        self.schema = settings.schema if self.postgres and "options=" not in url else None
        self.dialect = "postgresql" if self.postgres else "sqlite"
        if self.schema not in (None, "public"):
            setup = make_engine(self.url)
            try:
                with setup.begin() as conn:
                    conn.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            finally:
                setup.dispose()
        self.write_engine = self._engine(self.url)
        self.read_engine = self._engine(self.read_url)
        self._stats = {"read": PoolStats(), "write": PoolStats()}
        self._stats["read"].watch(self.read_engine)
        self._stats["write"].watch(self.write_engine)
        # each pool keeps one connection for the hot path (a checkout costs as much as a lookup)
        self._kept = {
            "read": KeptConnection(self.read_engine),
            "write": KeptConnection(self.write_engine),
        }
        self.slow_ms, self.retries = slow_ms, retries
        self.slow_log: collections.deque[dict] = collections.deque(maxlen=200)
        self._statements = Statements(self.write_engine.dialect, self.postgres)
        if cache is True:
            from perflab.cache import MemoryTier, TieredCache

            cache = TieredCache([MemoryTier(10_000)], default_ttl=60, coherence=False)
        self.cache = cache
        self._queries = QueryCache(cache) if cache is not None else None

    def _engine(self, url: str) -> sa.Engine:
        p = self.pool
        settings = []
        if self.schema not in (None, "public"):
            settings.append(f"-c search_path={quote_identifier(self.schema)},public")
        if p.statement_timeout_ms:
            settings.append(f"-c statement_timeout={int(p.statement_timeout_ms)}")
        return make_engine(
            url,
            connect_timeout=p.connect_timeout,
            options=postgres_options(*settings),
            pool_size=p.size,
            max_overflow=p.max_overflow,
            pool_timeout=p.timeout,
            pool_recycle=p.recycle,
        )

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
                    self._after_failure(role, conn, err)
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
            raise query_error(err, what) from err

    def _after_failure(self, role: str, conn: Any, err: BaseException) -> None:
        """A statement failed on ``conn``: if the server dropped it, close it and replace the
        pool (a restart or terminated backends dropped the others too)."""
        if lost(err):
            with contextlib.suppress(Exception):  # already gone: closing is tidying
                conn.driver_connection.close()
            engine = self.read_engine if role == "read" else self.write_engine
            engine.dispose(close=False)

    def _args(self, sql: str, params: dict | None) -> tuple[str, Any, bool | None]:
        return self._statements.bind(sql, params)

    def _execute(self, conn: Any, text: str, args: Any, prepare: bool | None, fetch: int) -> Any:
        """One statement on a DBAPI connection: ``fetch`` 0 → (rowcount, None), 1 → (rows,
        None), 2 → (rows, description). The description costs a Column object per column, so
        only the callers that need the column names ask for it."""
        if self.postgres:
            cur = conn.driver_connection.execute(text, args, prepare=prepare)
        else:
            cur = conn.cursor()
            cur.execute(text, args)
        try:
            if not fetch:
                return cur.rowcount, None
            return cur.fetchall(), cur.description if fetch == 2 else None
        finally:
            cur.close()

    def _run(self, role: str, sql: str, params: dict | None, fetch: int) -> tuple[Any, Any]:
        text, args, prepare = self._args(sql, params)
        stats = self._stats[role]
        kept = self._kept[role]
        attempts = self.retries + 1 if role == "read" else 1  # never retry a single write
        for attempt in range(attempts):
            t0 = time.perf_counter()
            try:
                conn = kept.acquire()  # the hot path: the kept connection, when free
                if conn is None:
                    with self._dbapi(role, sql) as conn:
                        result = self._execute(conn, text, args, prepare, fetch)
                else:
                    stats.checkouts += 1
                    try:
                        result = self._execute(conn, text, args, prepare, fetch)
                    except BaseException as err:
                        kept.release(failed=True)
                        self._after_failure(role, conn, err)
                        raise
                    kept.release()
                break
            except Exception as err:  # classified below: transient retried, others raised
                if attempt + 1 < attempts and transient(err):
                    stats.retries += 1
                    time.sleep(backoff(attempt))
                    continue
                raise query_error(err, sql) from err
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

    def driver_connection(self, role: str = "read") -> Any:
        """The DBAPI connection (psycopg / sqlite3) that the ``role`` hot path keeps, for a raw
        peer timed over the very same connection and server process. Use it from one thread,
        between the runner's calls: it stays the runner's.

        Why the same connection: on this 2-vCPU VM a round trip to a backend on the client's
        CPU took ~20 µs and to one on the other CPU 120–150 µs, and the scheduler keeps each
        backend where it is, so two arms on two connections measure where their backends sit."""
        if role not in self._stats:
            raise QueryError(f"no {role!r} pool: use 'read' or 'write'", sql=None)
        with self._dbapi(role, "a driver connection") as conn:
            return conn.driver_connection

    def fetch(self, sql: str, params: dict | None = None, cache_ttl: float | None = None) -> list:
        """Rows (tuples) from the read pool; with ``cache_ttl``, from the query cache."""
        return self._read(sql, params, cache_ttl, columns=False)[0]

    def query(
        self, sql: str, params: dict | None = None, cache_ttl: float | None = None
    ) -> pd.DataFrame:
        """A DataFrame from the read pool (for notebooks; ``fetch`` is the fast path)."""
        rows, columns = self._read(sql, params, cache_ttl, columns=True)
        return pd.DataFrame.from_records(rows, columns=columns)

    def _read(
        self, sql: str, params: dict | None, cache_ttl: float | None, columns: bool
    ) -> tuple[list, list]:
        """Rows and (when ``columns`` or cached, which keeps them) the column names."""
        key = None
        if cache_ttl is not None:
            if self._queries is None:
                raise QueryError(
                    f"cache_ttl={cache_ttl!r} given but the runner has no cache: create it with "
                    "QueryRunner(cache=True) or cache=TieredCache(...)",
                    sql=sql,
                )
            key = cache_key("read", sql, params)
            hit = self._queries.get(key)
            if hit is not None:
                return hit
        fetch = 2 if columns or key is not None else 1
        rows, description = self._run("read", sql, params, fetch=fetch)
        names = [d[0] for d in description] if description else []
        if key is not None:
            self._queries.put(key, sql, rows, names, cache_ttl)
        return rows, names

    # ------------------------------------------------------------------------------------------
    # writes

    def execute(self, sql: str, params: dict | None = None) -> int:
        """Run one statement on the write pool; returns its rowcount. Never retried. Cached
        queries reading a table it writes are invalidated."""
        count = self._run("write", sql, params, fetch=0)[0]
        for table in tables_written(sql):
            self.invalidate(table)
        return count

    def invalidate(self, table: str) -> int:
        """Drop cached queries that read ``table``."""
        if self._queries is None:
            return 0
        return self._queries.invalidate(table)

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
                if attempt < retries and transient(err):
                    self._stats["write"].retries += 1
                    time.sleep(backoff(attempt))
                    continue
                raise query_error(err, getattr(fn, "__name__", "transaction")) from err
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
        return bulk.batch_insert(self, table, rows, columns, chunk_size)

    def bulk_update(self, table: str, rows: Any, key: str = "id") -> int:
        """Update many rows by ``key``: COPY into a temporary table, then one UPDATE … FROM."""
        return bulk.bulk_update(self, table, rows, key)

    # ------------------------------------------------------------------------------------------
    # materialized views, plans, indexes

    def materialized_view(self, name: str, sql: str) -> MaterializedView:
        return MaterializedView(self, name, sql)

    # ------------------------------------------------------------------------------------------

    def stats(self) -> pd.DataFrame:
        """One row per pool: checkouts, waits, wait time, connections in use/open, queries,
        slow queries, retries, query-cache hits and misses."""
        rows, queries = [], self._queries
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
                    "cache_hits": queries.hits if queries and role == "read" else 0,
                    "cache_misses": queries.misses if queries and role == "read" else 0,
                }
            )
        return pd.DataFrame(rows).set_index("pool")

    def close(self) -> None:
        for kept in self._kept.values():
            kept.close()
        self.read_engine.dispose()
        self.write_engine.dispose()
        if self._queries is not None:
            self._queries.close()

    def __enter__(self) -> QueryRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
