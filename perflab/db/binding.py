"""Statements as the driver takes them: named ``:params`` compiled once per statement text to
positional placeholders (``%s`` for psycopg, ``?`` for sqlite3), bound as a tuple.

Positional, because psycopg maps a dict onto named placeholders on every call and passes a
tuple straight on; the runner's hot path (``QueryRunner.fetch``) binds one statement per call.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

from perflab.errors import QueryError

__all__ = ["Statements", "preparable"]


class Statements:
    """The compiled form of each statement text a runner has seen (thread-safe)."""

    def __init__(self, dialect: sa.engine.Dialect, postgres: bool) -> None:
        self._dialect = type(dialect)(paramstyle="format") if postgres else dialect
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, bool | None]] = {}
        self._lock = threading.Lock()

    def compile(self, sql: str) -> tuple[str, tuple[str, ...] | None, bool | None]:
        """(driver text, parameter names in placeholder order or None, whether to prepare)."""
        found = self._compiled.get(sql)
        if found is None:
            compiled = sa.text(sql).compile(dialect=self._dialect)
            names = tuple(compiled.positiontup) if compiled.positiontup else None
            found = (compiled.string, names, preparable(compiled.string))
            with self._lock:
                self._compiled[sql] = found
        return found

    def bind(self, sql: str, params: dict | None) -> tuple[str, Any, bool | None]:
        """(driver text, the values in placeholder order, whether to prepare)."""
        text, names, prepare = self.compile(sql)
        params = params or {}
        if names is None:
            return text, params, prepare
        try:
            return text, tuple(params[n] for n in names), prepare
        except KeyError as err:
            raise QueryError(f"missing parameter {err.args[0]!r} for: {sql}", sql=sql) from None


def preparable(sql: str) -> bool | None:
    """Prepare queries explicitly (they repeat); leave utility statements to psycopg."""
    return (
        True
        if sql.lstrip()[:6].upper() in ("SELECT", "WITH", "VALUES", "INSERT", "UPDATE", "DELETE")
        else None
    )
