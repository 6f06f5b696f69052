"""Index advice for a database perflab did not create: the expensive queries (from
``pg_stat_statements`` when it is loaded, else a queries file or perflab's slow log), their plans,
and indexes ranked by the time they would save (calls × saving per call), priced with HypoPG's
hypothetical indexes where the extension is installed, so nothing is built.

Everything runs in one READ ONLY transaction under a ``statement_timeout`` that is rolled back
at the end; EXPLAIN ANALYZE (which executes the query) only when asked. The one write, creating
an index, is :func:`apply_suggestion`'s, and it runs only the statement built again from the
suggestion's validated table and column names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from perflab.db.explain import IndexSuggestion, QueryPlan, advise, from_postgres
from perflab.db.identifiers import quote_identifier, quote_qualified
from perflab.db.statements import (
    WorkloadQuery,
    extension_schema,
    first_line,
    savepoint,
    top_statements,
)
from perflab.errors import ConfigurationError, QueryError, ServerError
from perflab.urls import POSTGRES_SCHEMES, check_url, libpq_url, redact

__all__ = ["Advice", "advise_workload", "apply_suggestion", "read_only"]

_PARAM = re.compile(r"\$\d+")


@dataclasses.dataclass(frozen=True)
class Advice:
    """What :func:`advise_workload` found."""

    queries: pd.DataFrame  # one row per query, costliest first: calls, times, plan cost, scans
    suggestions: pd.DataFrame  # one row per index, ranked by est_saved (calls x saving)
    source: str  # pg_stat_statements, file, slow log
    hypothetical: bool  # savings priced with HypoPG (else from the plan's cost shares)
    unit: str = "ms"  # of est_saved: ms, or planner cost units when no query has a time
    notes: tuple[str, ...] = ()
    plans: dict[str, QueryPlan] = dataclasses.field(default_factory=dict)
    chosen: tuple[IndexSuggestion, ...] = ()  # in the order of ``suggestions``

    @property
    def worth_applying(self) -> tuple[IndexSuggestion, ...]:
        """The ranked suggestions that would save time (an index the planner would not use on
        a tiny table saves none)."""
        saved = self.suggestions["est_saved"].tolist()
        return tuple(s for s, t in zip(self.chosen, saved, strict=True) if t > 0)


def _connect(url: str, timeout_ms: int) -> Any:
    import psycopg

    check_url("database_url", url, POSTGRES_SCHEMES)
    try:
        return psycopg.connect(libpq_url(url), connect_timeout=10, autocommit=False)
    except psycopg.Error as err:
        raise ServerError(
            f"cannot connect to {redact(url)} ({str(err).strip().splitlines()[0]}); check the URL, "
            "the user and that the server runs",
            url=redact(url),
        ) from err


@contextlib.contextmanager
def read_only(url: str, *, timeout_ms: int = 5_000, search_path: str = "") -> Iterator[Any]:
    """A psycopg connection inside one READ ONLY transaction with ``statement_timeout`` (and
    ``search_path``: schemas, comma-separated, validated), rolled back (and closed) whatever
    happens."""
    import psycopg

    schemas = [quote_identifier(s.strip(), "schema") for s in search_path.split(",") if s.strip()]
    conn = _connect(url, timeout_ms)
    try:
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        if schemas:
            conn.execute(f"SET LOCAL search_path = {', '.join(schemas)}")
        yield conn
    finally:
        with contextlib.suppress(psycopg.Error):  # a broken connection has nothing to roll back
            conn.rollback()
        conn.close()


def _explain(conn: Any, sql: str, analyze: bool) -> QueryPlan:
    """The plan (VERBOSE, so scans name their schema). A statement with ``$n`` placeholders
    (pg_stat_statements normalises constants away) is planned generically: prepared, then
    explained with NULLs under ``plan_cache_mode = force_generic_plan``, so no value is used."""
    params = sorted({int(p[1:]) for p in _PARAM.findall(sql)})
    options = "ANALYZE, BUFFERS, VERBOSE, FORMAT JSON" if analyze else "VERBOSE, FORMAT JSON"
    with savepoint(conn):
        if params:
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.execute(f"PREPARE perflab_advice AS {sql}")
            nulls = ", ".join(["NULL"] * max(params))
            doc = conn.execute(f"EXPLAIN ({options}) EXECUTE perflab_advice({nulls})").fetchone()
            conn.execute("DEALLOCATE perflab_advice")
        else:
            doc = conn.execute(f"EXPLAIN ({options}) {sql}").fetchone()
    raw = doc[0]
    return from_postgres(json.loads(raw) if isinstance(raw, str) else raw, sql, None)


def _table_rows(conn: Any, plan: QueryPlan) -> dict[str, float]:
    rows = {}
    for node in plan.seq_scans:
        if node.relation and node.schema:
            found = conn.execute(
                "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s",
                (node.schema, node.relation),
            ).fetchone()
            if found and found[0] > 0:
                rows[f"{node.schema}.{node.relation}"] = float(found[0])
    return rows


def _hypothetical_cost(
    conn: Any, hypopg: str, query: WorkloadQuery, suggestion: IndexSuggestion
) -> float:
    """The plan's cost with ``suggestion``'s index as a HypoPG hypothetical one (session
    memory only; the catalogs are untouched). ``hypopg``: the extension's quoted schema."""
    with savepoint(conn):
        conn.execute(f"SELECT {hypopg}.hypopg_create_index(%s)", (suggestion.statement(),))
        try:
            return float(_explain(conn, query.sql, analyze=False).root.total_cost or 0.0)
        finally:
            conn.execute(f"SELECT {hypopg}.hypopg_reset()")


def _cost_share(plan: QueryPlan, suggestion: IndexSuggestion) -> float:
    """Without HypoPG: the share of the plan's cost spent in the scans the index would replace
    (an upper bound on the saving: the index scan costs something too)."""
    total = plan.root.total_cost or 0.0
    spent = sum(
        n.total_cost or 0.0
        for n in plan.seq_scans
        if suggestion.table.rpartition(".")[2] == n.relation
    )
    return min(spent / total, 1.0) if total else 0.0


def advise_workload(
    url: str,
    queries: Sequence[WorkloadQuery] | None = None,
    *,
    limit: int = 10,
    analyze: bool = False,
    timeout_ms: int = 5_000,
    search_path: str = "",
) -> Advice:
    """The expensive reads (``queries`` when given, else the top of ``pg_stat_statements``),
    each EXPLAINed (ANALYZE only with ``analyze``), and the indexes that would spare their
    wasteful scans ranked by estimated total time saved. ``search_path`` is the
    schemas the application's unqualified table names resolve in. Never writes."""
    notes: list[str] = []
    with read_only(url, timeout_ms=timeout_ms, search_path=search_path) as conn:
        if queries:  # the user's own list wins over pg_stat_statements
            found, why, source = list(queries), None, queries[0].source
        else:
            found, why = top_statements(conn, limit)
            source = "pg_stat_statements"
        if why:
            notes.append(why)
        if not found:
            raise ConfigurationError(
                f"no queries to advise on for {redact(url)}: {why}; pass a queries file "
                "(statements separated by ;) or load pg_stat_statements "
                "(shared_preload_libraries)",
                name="queries",
            )
        hypopg = extension_schema(conn, "hypopg")
        hypothetical = hypopg is not None
        if not hypothetical:
            notes.append(
                "HypoPG is not installed in this database: savings are estimated from the plan's "
                "cost shares (an upper bound); CREATE EXTENSION hypopg prices them properly"
            )
        if analyze and any(_PARAM.search(q.sql) for q in found):
            notes.append(
                "statements with $n placeholders are planned generically without ANALYZE (their "
                "values are not known)"
            )
        import psycopg

        timed = any(q.mean_ms is not None for q in found) or analyze
        unit = "ms" if timed else "planner cost"
        if not timed:
            notes.append(
                "no query has a time (no pg_stat_statements, no ANALYZE): savings are in the "
                "planner's cost units, weighted by calls"
            )
        rows, advice, plans = [], {}, {}
        for i, query in enumerate(found):
            label = f"q{i + 1}"
            try:
                use_analyze = analyze and not _PARAM.search(query.sql)
                plan = _explain(conn, query.sql, use_analyze)
            except psycopg.Error as err:  # one statement's failure is reported, not fatal
                notes.append(
                    f"{label} could not be explained ({first_line(err)}): {query.sql[:80]}"
                )
                continue
            plans[label] = plan
            mean = query.mean_ms if query.mean_ms is not None else plan.total_ms
            weight = mean if timed else plan.root.total_cost
            rows.append(
                {
                    "query": label,
                    "calls": query.calls,
                    "total_ms": query.total_ms,
                    "mean_ms": mean,
                    "cost": plan.root.total_cost,
                    "weight": query.calls * (weight or 0.0),  # calls x (mean ms or cost)
                    "seq_scans": ", ".join(n.relation or "?" for n in plan.seq_scans),
                    "sql": query.sql,
                }
            )
            for suggestion in advise(plan, table_rows=_table_rows(conn, plan)):
                before = plan.root.total_cost or 0.0
                if hypothetical:
                    after = _hypothetical_cost(conn, str(hypopg), query, suggestion)
                    share = max(0.0, 1.0 - after / before) if before else 0.0
                else:
                    share = _cost_share(plan, suggestion)
                saving = (weight or 0.0) * share
                key = (suggestion.table, suggestion.columns)
                entry = advice.setdefault(
                    key, {"suggestion": suggestion, "queries": [], "saved_ms": 0.0, "share": 0.0}
                )
                entry["queries"].append(label)
                entry["saved_ms"] += query.calls * saving
                entry["share"] = max(entry["share"], share)
    ranked = sorted(advice.values(), key=lambda e: -e["saved_ms"])
    suggestions = pd.DataFrame(
        [
            {
                "rank": r + 1,
                "table": e["suggestion"].table,
                "columns": ", ".join(e["suggestion"].columns),
                "queries": ", ".join(e["queries"]),
                "est_saved": e["saved_ms"],
                "est_cost_cut": e["share"],
                "ddl": e["suggestion"].ddl,
            }
            for r, e in enumerate(ranked)
        ],
        columns=["rank", "table", "columns", "queries", "est_saved", "est_cost_cut", "ddl"],
    )
    return Advice(
        queries=pd.DataFrame(rows).sort_values("weight", ascending=False, ignore_index=True)
        if rows
        else pd.DataFrame(rows),
        suggestions=suggestions,
        source=source,
        hypothetical=hypothetical,
        unit=unit,
        notes=tuple(notes),
        plans=plans,
        chosen=tuple(e["suggestion"] for e in ranked),
    )


def apply_suggestion(url: str, suggestion: IndexSuggestion, *, timeout_ms: int = 600_000) -> str:
    """Create ``suggestion``'s index: the statement is built again from its validated table and
    columns and must be the ``ddl`` that was shown, else nothing runs (QueryError). Returns the
    statement run."""
    ddl = suggestion.statement()
    if suggestion.ddl.strip() != ddl:
        raise QueryError(
            f"refusing {suggestion.ddl!r}: it is not the index on {suggestion.table} "
            f"({', '.join(suggestion.columns)}) that was shown ({ddl!r}); nothing was executed",
            sql=suggestion.ddl,
        )
    conn = _connect(url, timeout_ms)
    try:
        conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        conn.execute(ddl)
        conn.execute(f"ANALYZE {quote_qualified(suggestion.table)}")
        conn.commit()
    finally:
        conn.close()
    return ddl
