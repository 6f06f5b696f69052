"""The optimised service's database reads without blocking the event loop, two ways:

* ``engine``: SQLAlchemy's async engine on psycopg 3 (AUTOCOMMIT, no rollback on return, so
  psycopg's prepared statements survive checkouts), each query sent on the driver's
  ``AsyncConnection`` with ``prepare=True``;
* ``thread``: the lab's ``QueryRunner`` (sync pool, prepared statements) in a worker thread.

``PERFLAB_SERVICE_DB=engine|thread`` picks one (see the CHANGELOG for the measurement behind
the default). SQLite has no async psycopg: it always takes the thread."""

from __future__ import annotations

import asyncio
from typing import Any

from perflab.db import QueryRunner, quote_identifier
from perflab.errors import ConfigurationError, QueryError
from perflab.settings import resolve
from perflab.sql import make_async_engine

__all__ = ["DEFAULT_MODE", "EngineReader", "ThreadReader", "make_reader"]

DEFAULT_MODE = "thread"  # measured: see benchmarks/service_db.py and the CHANGELOG


class ThreadReader:
    """``QueryRunner.fetch`` in a worker thread: named ``:params``."""

    mode = "thread"

    def __init__(self, runner: QueryRunner) -> None:
        self.runner = runner

    async def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        return await asyncio.to_thread(self.runner.fetch, sql, params)

    def pool(self) -> dict[str, Any]:
        stats = self.runner.stats()
        row = stats.loc["read"] if "read" in stats.index else stats.iloc[0]
        return {"mode": self.mode, **{k: _plain(v) for k, v in row.items()}}

    async def aclose(self) -> None:
        return None


class EngineReader:
    """SQLAlchemy's async engine on psycopg; named ``:params`` compiled once per statement
    to psycopg's ``%(name)s`` and sent prepared."""

    mode = "engine"

    def __init__(self, url: str, schema: str | None, *, size: int = 5, overflow: int = 10) -> None:
        options = None
        if schema not in (None, "public"):
            options = f"-c search_path={quote_identifier(schema)},public"
        self.size, self.overflow = size, overflow
        self.engine = make_async_engine(
            url, connect_timeout=5, options=options, pool_size=size, max_overflow=overflow
        )
        self._compiled: dict[str, str] = {}

    def _compile(self, sql: str) -> str:
        found = self._compiled.get(sql)
        if found is None:
            import sqlalchemy as sa

            found = str(sa.text(sql).compile(dialect=self.engine.sync_engine.dialect))
            self._compiled[sql] = found
        return found

    async def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        text = self._compile(sql)
        try:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                cur = await raw.driver_connection.execute(text, params, prepare=True)
                return await cur.fetchall()
        except Exception as err:  # any driver or pool error: one error type, the SQL attached
            raise QueryError(f"{type(err).__name__}: {err}".splitlines()[0], sql=sql) from err

    def pool(self) -> dict[str, Any]:
        p = self.engine.sync_engine.pool
        return {
            "mode": self.mode,
            "size": self.size,
            "max_overflow": self.overflow,
            "checked_out": p.checkedout(),
            "idle": p.checkedin(),
        }

    async def aclose(self) -> None:
        await self.engine.dispose()


def make_reader(runner: QueryRunner, mode: str | None = None) -> ThreadReader | EngineReader:
    """The reader ``mode`` (default ``PERFLAB_SERVICE_DB``, else DEFAULT_MODE) names."""
    mode = mode or resolve().service_db or DEFAULT_MODE
    if mode not in ("engine", "thread"):
        raise ConfigurationError(
            f"PERFLAB_SERVICE_DB={mode!r}: use 'engine' or 'thread'", name="PERFLAB_SERVICE_DB"
        )
    if mode == "thread" or not runner.postgres:
        return ThreadReader(runner)
    return EngineReader(runner.read_url, runner.schema)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
