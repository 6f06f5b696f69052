"""L3: a database table (PostgreSQL, or SQLite as the lightest). One row per key: the perflab
envelope as bytes and the expiry as a number, upserted; tags in a second table. AUTOCOMMIT with
no rollback on return, so psycopg's prepared statements survive pool checkouts."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from perflab.cache.breaker import Breaker, GuardedTier, guarded
from perflab.cache.entry import Entry, pack, unpack, unpack_many
from perflab.cache.kept_connection import KeptConnection
from perflab.cache.serializers import serializer as make_serializer
from perflab.errors import CacheError
from perflab.identifiers import is_identifier
from perflab.sql import make_engine

__all__ = ["DatabaseTier"]


def _like(pattern: str) -> str:
    """A glob (``*``, ``?``) as a LIKE pattern with ``\\`` escapes."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class DatabaseTier(GuardedTier):
    """L3 on a database URL (default: the lab's PostgreSQL, or ``PERFLAB_DATABASE_URL``)."""

    shared = True
    _errors = (
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        sa.exc.DisconnectionError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
        sqlite3.OperationalError,
    )

    def __init__(
        self,
        url: str | None = None,
        *,
        table: str = "perflab_cache",
        schema: str | None = None,
        serializer: str = "json",
        secret: bytes | str | None = None,
        timeout: float = 2.0,
        timer: Callable[[], float] | None = None,
        purge_every: int = 1000,
    ) -> None:
        from perflab import servers
        from perflab.settings import resolve, sqlalchemy_url

        settings = resolve()
        self.url = url or servers.start(settings, redis=False).database_url
        if not is_identifier(table, lower=True):
            raise CacheError(
                f"table {table!r} is not a plain lower-case SQL identifier", tier="database"
            )
        self.serializer = make_serializer(serializer, secret=secret)
        self.name = "database"
        self.timer = timer  # None: the tiered cache's (expiry is decided there)
        if not (type(purge_every) is int and purge_every >= 0):
            raise CacheError(
                f"purge_every is a number of rows >= 0 (0: never), got {purge_every!r}",
                tier="database",
            )
        # Expired rows are purged lazily: after every ``purge_every`` rows written, one
        # bounded DELETE of up to twice that many, so purging outpaces writing and the table
        # stays within about the live keys plus two batches (reads ignore expired rows anyway).
        self.purge_every = purge_every
        self.purged = 0  # expired rows deleted (TieredCache.stats() column "expired")
        self._written = 0
        sa_url = sqlalchemy_url(self.url)
        postgres = sa_url.startswith("postgresql")
        schema = (schema or settings.schema) if postgres else None
        if schema is not None and not is_identifier(schema, lower=True):
            raise CacheError(
                f"schema {schema!r} is not a plain lower-case SQL identifier", tier="database"
            )
        # psycopg's prepared statements kept across checkouts (perflab.sql)
        self.engine = make_engine(
            self.url, connect_timeout=timeout if postgres else None, pool_pre_ping=False
        )
        meta = sa.MetaData(schema=schema)
        self.table = sa.Table(
            table,
            meta,
            sa.Column("key", sa.Text, primary_key=True),
            sa.Column("value", sa.LargeBinary, nullable=False),
            sa.Column("expires_at", sa.Float, nullable=True),
        )
        self.tags = sa.Table(
            f"{table}_tags",
            meta,
            sa.Column("tag", sa.Text, primary_key=True),
            sa.Column("key", sa.Text, primary_key=True),
        )
        self._breaker = Breaker(
            f"database ({self.engine.url.render_as_string(hide_password=True)})", tier=self.name
        )
        self._insert = postgresql.insert if postgres else sqlite.insert
        # the purge finds expired rows by this index, not by reading the whole table
        expiry = sa.Index(f"{table}_expires_at", self.table.c.expires_at)
        with self.engine.connect() as conn:
            if schema is not None:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            meta.create_all(conn)
            expiry.create(conn, checkfirst=True)  # also on tables made before it existed
        self._postgres = postgres
        self._kept = KeptConnection(self.engine)  # the hit path skips the pool checkout
        qualified = sa.select(self.table.c.value).compile(dialect=self.engine.dialect)
        # the same statement as text for the DBAPI: identifiers validated above, quoted here
        self._get_sql = f"{qualified} WHERE {self._q('key')} = {'%s' if postgres else '?'}"

    def _q(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def _upsert(self, rows: list[dict[str, Any]]) -> sa.Executable:
        stmt = self._insert(self.table).values(rows)
        return stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
        )

    def prepare(self, key: str, entry: Entry) -> bytes:
        return pack(self.serializer, key, entry)

    def _row(self, key: str, entry: Entry, data: bytes | None = None) -> dict[str, Any]:
        data = data if data is not None else pack(self.serializer, key, entry)
        return {"key": key, "value": data, "expires_at": entry.expires_at}

    @guarded
    def get(self, key: str) -> Entry | None:
        # The hit path: a pooled DBAPI connection and one prepared statement, without
        # SQLAlchemy's statement machinery (2.5x a raw prepared select here, this is ~1.2x).
        kept = self._kept
        conn = kept.acquire()
        if conn is None:  # another thread has it: a pooled connection
            with kept.connection() as conn:
                row = self._select(conn, key)
        else:
            try:
                row = self._select(conn, key)
            except BaseException:
                kept.release(failed=True)
                raise
            kept.release()
        return None if row is None else unpack(self.serializer, key, bytes(row[0]))

    def driver_connection(self) -> Any:
        """The DBAPI connection the hit path keeps (psycopg / sqlite3), for a raw peer timed
        over the same connection and server process (one thread, between the tier's calls).
        Two connections would measure where the scheduler put two backends: here a round
        trip to a backend on the client's vCPU took ~20 µs, on the other 120–150 µs."""
        with self._kept.connection() as conn:
            return conn.driver_connection

    def _select(self, conn: Any, key: str) -> Any:
        if self._postgres:
            return conn.driver_connection.execute(self._get_sql, (key,), prepare=True).fetchone()
        cursor = conn.cursor()
        try:
            cursor.execute(self._get_sql, (key,))
            return cursor.fetchone()
        finally:
            cursor.close()

    @guarded
    def set(
        self, key: str, entry: Entry, tags: Iterable[str] = (), data: bytes | None = None
    ) -> None:
        tags = tuple(tags)
        with self.engine.connect() as conn:
            conn.execute(self._upsert([self._row(key, entry, data)]))
            if tags:
                stmt = self._insert(self.tags).values([{"tag": t, "key": key} for t in tags])
                conn.execute(stmt.on_conflict_do_nothing())
            self._wrote(conn, 1)

    @guarded
    def delete(self, key: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.delete(self.table).where(self.table.c.key == key)).rowcount > 0

    @guarded
    def get_many(self, keys: list[str]) -> dict[str, Entry]:
        if not keys:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(self.table.c.key, self.table.c.value).where(self.table.c.key.in_(keys))
            ).all()
        return unpack_many(self.serializer, [(k, bytes(v)) for k, v in rows])

    @guarded
    def set_many(self, entries: dict[str, Entry]) -> None:
        if entries:
            with self.engine.connect() as conn:
                conn.execute(self._upsert([self._row(k, e) for k, e in entries.items()]))
                self._wrote(conn, len(entries))

    @guarded
    def delete_pattern(self, pattern: str) -> int:
        with self.engine.connect() as conn:
            where = self.table.c.key.like(_like(pattern), escape="\\")
            return conn.execute(sa.delete(self.table).where(where)).rowcount

    @guarded
    def delete_tags(self, tags: Iterable[str]) -> list[str]:
        tags = list(tags)
        with self.engine.begin() as conn:
            tagged = sa.select(self.tags.c.key).where(self.tags.c.tag.in_(tags))
            present = sa.select(self.table.c.key).where(self.table.c.key.in_(tagged))
            keys = sorted(set(conn.execute(present).scalars()))
            if keys:
                conn.execute(sa.delete(self.table).where(self.table.c.key.in_(keys)))
            conn.execute(sa.delete(self.tags).where(self.tags.c.tag.in_(tags)))
        return keys

    def _wrote(self, conn: Any, rows: int) -> None:
        """Count written rows; past ``purge_every`` of them, purge one bounded batch."""
        self._written += rows
        if self.purge_every and self._written >= self.purge_every:
            self._written = 0
            self.purged += self._purge(conn, 2 * max(self.purge_every, rows))

    def _purge(self, conn: Any, limit: int | None) -> int:
        expired = self.table.c.expires_at < (self.timer or time.time)()
        if limit is None:
            statement = sa.delete(self.table).where(expired)
        else:  # DELETE ... LIMIT is not portable: a bounded subquery of keys (the primary key)
            batch = sa.select(self.table.c.key).where(expired).limit(limit).scalar_subquery()
            statement = sa.delete(self.table).where(self.table.c.key.in_(batch))
        deleted: int = conn.execute(statement).rowcount
        return deleted

    @guarded
    def purge_expired(self, limit: int | None = None) -> int:
        """Delete rows whose expiry has passed (all, or at most ``limit``); the rows deleted.
        Writes call this by themselves in bounded batches (``purge_every``)."""
        with self.engine.connect() as conn:
            n = self._purge(conn, limit)
        self.purged += n
        return n

    def clear(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.delete(self.table))
            conn.execute(sa.delete(self.tags))

    def drop(self) -> None:
        """Drop the cache's tables (tests, teardown)."""
        with self.engine.connect() as conn:
            self.table.metadata.drop_all(conn)

    @guarded
    def size(self) -> tuple[int | None, int | None]:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(self.table)
            ).scalar_one(), None

    def close(self) -> None:
        self._kept.close()
        self.engine.dispose()
