"""Plans and indexes for the query runner: EXPLAIN as data, index advice from a plan, and
creating a suggested index with a before/after timing (``QueryRunner`` inherits these)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from perflab.db.explain import IndexSuggestion, QueryPlan, advise, from_postgres, from_sqlite
from perflab.db.identifiers import quote_qualified
from perflab.errors import QueryError

__all__ = ["IndexAdvice", "median_ms"]


class IndexAdvice:
    """``explain``, ``suggest_indexes`` and ``apply_index`` over a runner's ``_run``/``_args``,
    ``execute``, ``postgres`` and ``read_engine``."""

    postgres: bool
    read_engine: Any
    _run: Callable[..., Any]
    _args: Callable[..., Any]
    execute: Callable[..., int]

    def explain(self, sql: str, params: dict | None = None, analyze: bool = True) -> QueryPlan:
        """The plan as data. PostgreSQL: EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) — ANALYZE runs
        the statement. SQLite: EXPLAIN QUERY PLAN in the same shape."""
        if self.postgres:
            options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
            rows, _ = self._run("read", f"EXPLAIN ({options}) {sql}", params, fetch=1)
            doc = rows[0][0]
            return from_postgres(json.loads(doc) if isinstance(doc, str) else doc, sql, params)
        text, args, _ = self._args(f"EXPLAIN QUERY PLAN {sql}", params)
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
        self,
        suggestion: IndexSuggestion,
        verify: bool = True,
        repeat: int = 5,
        measure: Callable[[Callable[[], object], int], float] | None = None,
    ) -> dict:
        """Create the suggested index; with ``verify``, time the query before and after and
        report the plans' scan types. ``measure(fn, repeat)`` gives milliseconds per call; the
        default is :func:`median_ms` (the harness, ``perflab.bench``, sits above ``db`` and
        can be passed in by a suite)."""
        measure = measure or median_ms

        def query() -> object:
            return self._run("read", suggestion.sql, suggestion.params, fetch=1)

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
        before = measure(query, repeat) if verify else None
        self.execute(ddl)
        if self.postgres:
            self.execute(f"ANALYZE {quote_qualified(suggestion.table)}")
        if not verify:
            return {"index": ddl}
        after = measure(query, repeat)
        plan = self.explain(suggestion.sql, suggestion.params)
        return {
            "index": ddl,
            "before_ms": before,
            "after_ms": after,
            "speedup": before / after if after else float("inf"),
            "plan_after": [n.node_type for n in plan.nodes()],
        }


def median_ms(
    fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """The median of ``repeat`` calls of ``fn``, in milliseconds (``clock`` in seconds)."""
    times = []
    for _ in range(max(1, repeat)):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    return sorted(times)[len(times) // 2]
