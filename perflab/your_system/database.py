"""The speedup of a suggested index, verified without touching the user's table: the table is
copied into a scratch schema, the index built on the copy, and the query timed on the original
and on the copy interleaved (``bench.ab``), then the scratch schema is dropped."""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

import psycopg

from perflab import bench
from perflab.db import IndexSuggestion, check_identifier, index_ddl, quote_identifier
from perflab.errors import QueryError
from perflab.urls import libpq_url, redact

__all__ = ["verify_index"]


def _connect(url: str, schemas: list[str]) -> Any:
    path = ",".join(schemas)  # libpq options split on spaces: none in the list
    return psycopg.connect(libpq_url(url), autocommit=True, options=f"-c search_path={path}")


def verify_index(
    url: str,
    suggestion: IndexSuggestion,
    sql: str,
    params: dict | tuple | None = None,
    *,
    search_path: str = "public",
    rounds: int = 20,
    min_time: float = 2.0,
) -> bench.Comparison:
    """Time ``sql`` (psycopg placeholders, ``params``) on ``suggestion``'s table as it is and on
    a scratch copy that has the index, interleaved; the comparison's ``speedup`` (with its CI)
    is the index's. ``sql`` must name the table unqualified (found through ``search_path``) or
    as ``schema.table``. Writes only the scratch schema, dropped before returning."""
    path = [check_identifier(s.strip(), "schema") for s in search_path.split(",") if s.strip()]
    schema, _, table = suggestion.table.rpartition(".")
    schema = schema or (path or ["public"])[0]
    for name in (schema, table):
        check_identifier(name, "table")
    scratch = f"perflab_verify_{uuid.uuid4().hex[:8]}"
    qualified = re.compile(rf'(?<![\w"])"?{re.escape(schema)}"?\."?{re.escape(table)}"?(?![\w"])')
    copy_sql = qualified.sub(f"{scratch}.{quote_identifier(table, 'table')}", sql)
    original = _connect(url, path)
    copy = None
    try:
        original.execute(f"CREATE SCHEMA {scratch}")
        source = f"{quote_identifier(schema, 'schema')}.{quote_identifier(table, 'table')}"
        target = f"{scratch}.{quote_identifier(table, 'table')}"
        original.execute(f"CREATE TABLE {target} AS TABLE {source}")
        original.execute(index_ddl(f"{scratch}.{table}", suggestion.columns))
        original.execute(f"ANALYZE {target}")
        copy = _connect(url, [scratch, *path])
        plan = copy.execute(f"EXPLAIN (FORMAT JSON) {copy_sql}", params).fetchone()[0]
        if "Index" not in str(plan):
            raise QueryError(
                f"the planner does not use the index on the copy of {suggestion.table} for this "
                "query, so there is no speedup to measure",
                sql=sql,
            )
        return bench.ab(
            lambda: original.execute(sql, params).fetchall(),
            lambda: copy.execute(copy_sql, params).fetchall(),
            name=f"index {suggestion.table} ({', '.join(suggestion.columns)})",
            rounds=rounds,
            min_time=min_time,
        )
    except psycopg.Error as err:
        raise QueryError(
            f"verifying the index on {suggestion.table} at {redact(url)} failed: "
            f"{str(err).strip().splitlines()[0]}",
            sql=sql,
        ) from err
    finally:
        if copy is not None:
            copy.close()
        with contextlib.suppress(psycopg.Error):
            original.execute(f"DROP SCHEMA IF EXISTS {scratch} CASCADE")
        original.close()
