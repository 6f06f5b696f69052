"""Materialized views: native on PostgreSQL; on SQLite a table rebuilt by ``refresh``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa

from perflab.db.identifiers import IdentifierError, check_identifier, quote_identifier

__all__ = ["MaterializedView", "ViewRunner"]


class ViewRunner(Protocol):
    """What a view needs of :class:`perflab.db.QueryRunner` (named here, so views and the
    runner do not import each other, not even for types)."""

    postgres: bool

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int: ...

    def query(
        self, sql: str, params: dict[str, Any] | None = None, cache_ttl: float | None = None
    ) -> pd.DataFrame: ...

    def transaction(
        self, fn: Callable[[sa.Connection], Any], retries: int | None = None
    ) -> Any: ...

    def invalidate(self, table: str) -> int: ...


class MaterializedView:
    """A named, stored query: native on PostgreSQL; on SQLite a table rebuilt by ``refresh``."""

    def __init__(self, runner: ViewRunner, name: str, sql: str) -> None:
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
