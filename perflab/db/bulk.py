"""The bulk paths of the query runner: binary COPY (PostgreSQL) or one ``executemany`` (SQLite)
for inserts, and COPY into a temporary table + one ``UPDATE … FROM`` for updates.

``runner`` is the ``QueryRunner`` whose write pool, column lookup and query cache they use.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd

from perflab.db.identifiers import check_identifier, quote_identifier, quote_qualified
from perflab.db.retry import query_error
from perflab.errors import ConfigurationError, QueryError

__all__ = ["BatchInsertError", "batch_insert", "bulk_update", "chunks", "rows_of"]


class BatchInsertError(QueryError):
    """A chunked ``batch_insert`` failed; ``inserted`` rows (whole chunks) were committed, so a
    caller resumes from row ``inserted`` without duplicates."""

    def __init__(self, message: str, *, inserted: int, table: str | None = None) -> None:
        super().__init__(message, sql=f"batch_insert into {table}" if table else None)
        self.inserted = inserted
        self.table = table


def rows_of(
    runner: Any, rows: Any, columns: list[str] | None, table: str
) -> tuple[list[str], Iterator[tuple]]:
    """(columns, iterator of tuples) from a DataFrame, tuples or dicts, streamed."""
    if isinstance(rows, pd.DataFrame):
        cols = list(columns or rows.columns)
        return cols, rows[cols].itertuples(index=False, name=None)
    if isinstance(rows, list) and rows and isinstance(rows[0], tuple):
        return list(columns or runner.columns(table)), rows  # as given: no per-row copying
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
    cols = list(columns or runner.columns(table))
    return cols, _chain(tuple(first), (tuple(r) for r in iterator))


def batch_insert(
    runner: Any,
    table: str,
    rows: Any,
    columns: list[str] | None = None,
    chunk_size: int | None = None,
) -> int:
    """Insert rows: binary COPY on PostgreSQL, one ``executemany`` on SQLite. One transaction
    by default (all or nothing); with ``chunk_size``, a commit per chunk, and on failure a
    BatchInsertError whose ``inserted`` says where to resume."""
    target = quote_qualified(table)
    cols, tuples = rows_of(runner, rows, columns, table)
    for c in cols:
        check_identifier(c, "column")
    if not cols:
        return 0
    column_list = ", ".join(quote_identifier(c, "column") for c in cols)
    inserted = 0
    parts = chunks(tuples, chunk_size) if chunk_size else [tuples]
    try:
        for chunk in parts:
            with runner._dbapi("write", f"batch_insert into {table}") as conn:
                if runner.postgres:
                    inserted += _copy(
                        conn.driver_connection, target, column_list, cols, table, chunk
                    )
                else:
                    inserted += _executemany(
                        conn.driver_connection, target, column_list, cols, chunk
                    )
    except Exception as err:  # report how far the committed chunks got, then raise
        if chunk_size:
            raise BatchInsertError(
                f"batch_insert into {table}: failed after {inserted} committed rows "
                f"({query_error(err, table)}); resume from row {inserted}",
                inserted=inserted,
                table=table,
            ) from err
        raise query_error(err, f"batch_insert into {table}") from err
    runner.invalidate(table)
    return inserted


def _copy(
    conn: Any, target: str, column_list: str, cols: list[str], table: str, chunk: Iterable
) -> int:
    types = _pg_types(conn, table, cols)
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


def _pg_types(conn: Any, table: str, cols: list[str]) -> list[str]:
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
        raise QueryError(f"table {table!r} has no column {missing[0]!r}; it has {sorted(known)}")
    return [known[c] for c in cols]


def _executemany(conn: Any, target: str, column_list: str, cols: list[str], chunk: Iterable) -> int:
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


def bulk_update(runner: Any, table: str, rows: Any, key: str = "id") -> int:
    """Update many rows by ``key``: COPY into a temporary table, then one UPDATE … FROM."""
    target = quote_qualified(table)
    cols, tuples = rows_of(runner, rows, None, table)
    if key not in cols:
        raise QueryError(f"bulk_update of {table}: the rows have no key column {key!r}")
    for c in cols:
        check_identifier(c, "column")
    qkey = quote_identifier(key, "column")
    sets = ", ".join(f"{quote_identifier(c)} = s.{quote_identifier(c)}" for c in cols if c != key)
    column_list = ", ".join(quote_identifier(c) for c in cols)
    step = f"bulk_update of {table}"  # the statement under way, for the error
    with runner._dbapi("write", step) as conn:
        db = conn.driver_connection
        try:
            if runner.postgres:
                with db.transaction():
                    step = f"CREATE TEMP TABLE _perflab_update (LIKE {target}) ON COMMIT DROP"
                    db.execute(step)
                    types = _pg_types(db, table, cols)
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
            raise query_error(err, step) from err
    runner.invalidate(table)
    return count


def _chain(first: Any, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    """Lists of at most ``size`` rows; a size below 1 is refused at once (ConfigurationError
    naming ``chunk_size``), before any row is read."""
    if size < 1:
        raise ConfigurationError(
            f"chunk_size must be >= 1, got {size}; pass a positive row count or None for one "
            "transaction",
            name="chunk_size",
        )
    return _chunked(iter(rows), size)  # one iterator across chunks (a list would restart)


def _chunked(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    while True:
        chunk = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= size:
                break
        if not chunk:
            return
        yield chunk
