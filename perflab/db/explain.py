"""Query plans as data, and index advice read from them: pure functions, no database."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pandas as pd

from perflab.db.identifiers import (
    IdentifierError,
    check_identifier,
    quote_identifier,
    quote_qualified,
)
from perflab.identifiers import is_identifier

__all__ = [
    "IndexSuggestion",
    "Plan",
    "PlanNode",
    "QueryPlan",
    "advise",
    "from_postgres",
    "from_sqlite",
    "index_ddl",
]


@dataclasses.dataclass
class PlanNode:
    node_type: str
    relation: str | None = None
    actual_rows: float | None = None
    loops: float | None = None
    rows_removed_by_filter: float | None = None
    time_ms: float | None = None
    filter: str | None = None
    index: str | None = None
    detail: str = ""
    plan_rows: float | None = None  # the planner's estimate of the rows this node returns
    total_cost: float | None = None  # the planner's cost, in its own units
    schema: str | None = None
    children: list[PlanNode] = dataclasses.field(default_factory=list)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


@dataclasses.dataclass
class QueryPlan:
    """A plan tree with the statement it belongs to."""

    root: PlanNode
    sql: str
    params: dict[str, Any] | None
    dialect: str
    total_ms: float | None = None
    raw: Any = None

    def nodes(self) -> list[PlanNode]:
        return list(self.root.walk())

    @property
    def seq_scans(self) -> list[PlanNode]:
        return [n for n in self.nodes() if n.node_type == "Seq Scan"]

    def to_frame(self) -> pd.DataFrame:
        """One row per node: depth, node type, relation, rows × loops, rows removed, time."""
        rows = []

        def visit(node: PlanNode, depth: int) -> None:
            rows.append(
                {
                    "depth": depth,
                    "node_type": node.node_type,
                    "relation": node.relation,
                    "index": node.index,
                    "actual_rows": node.actual_rows,
                    "loops": node.loops,
                    "rows_x_loops": None
                    if node.actual_rows is None
                    else node.actual_rows * (node.loops or 1),
                    "rows_removed_by_filter": node.rows_removed_by_filter,
                    "plan_rows": node.plan_rows,
                    "total_cost": node.total_cost,
                    "time_ms": node.time_ms,
                    "filter": node.filter,
                }
            )
            for child in node.children:
                visit(child, depth + 1)

        visit(self.root, 0)
        return pd.DataFrame(rows)


def from_postgres(doc: Any, sql: str, params: dict | None) -> QueryPlan:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) output → QueryPlan."""
    top = doc[0] if isinstance(doc, list) else doc

    def node(d: dict) -> PlanNode:
        return PlanNode(
            node_type=d.get("Node Type", "?"),
            relation=d.get("Relation Name"),
            actual_rows=d.get("Actual Rows"),
            loops=d.get("Actual Loops"),
            rows_removed_by_filter=d.get("Rows Removed by Filter"),
            time_ms=d.get("Actual Total Time"),
            filter=d.get("Filter"),
            index=d.get("Index Name"),
            plan_rows=d.get("Plan Rows"),
            total_cost=d.get("Total Cost"),
            schema=d.get("Schema"),
            children=[node(c) for c in d.get("Plans", [])],
        )

    return QueryPlan(node(top["Plan"]), sql, params, "postgresql", top.get("Execution Time"), doc)


_SQLITE = re.compile(r"^(SCAN|SEARCH)\s+(\w+)(?:\s+USING\s+(?:COVERING\s+)?INDEX\s+(\w+))?")


def from_sqlite(rows: list[tuple], sql: str, params: dict | None) -> QueryPlan:
    """EXPLAIN QUERY PLAN rows (id, parent, _, detail) → QueryPlan in the same shape."""
    nodes: dict[int, PlanNode] = {0: PlanNode("Query")}
    for node_id, parent, _, detail in rows:
        match = _SQLITE.match(detail)
        if match:
            kind = "Seq Scan" if match.group(1) == "SCAN" and not match.group(3) else "Index Scan"
            n = PlanNode(kind, relation=match.group(2), index=match.group(3), detail=detail)
        else:
            n = PlanNode(detail.split(" ")[0].title(), detail=detail)
        nodes[node_id] = n
        nodes.get(parent, nodes[0]).children.append(n)
    root = nodes[0]
    return QueryPlan(
        root.children[0] if len(root.children) == 1 else root, sql, params, "sqlite", None, rows
    )


def index_ddl(table: str, columns: tuple[str, ...] | list[str]) -> str:
    """``CREATE INDEX IF NOT EXISTS`` on ``table`` (``table`` or ``schema.table``) over
    ``columns``, built from those parts only, each validated and quoted: IdentifierError (nothing
    to execute) when one is not a plain identifier."""
    if isinstance(columns, str) or not columns:
        raise IdentifierError(
            f"index on {table!r}: columns must be a non-empty list of column names, got "
            f"{columns!r}; nothing was executed",
            name="columns",
            identifier=columns,
        )
    target = quote_qualified(table, "table")
    cols = [check_identifier(c, "column") for c in columns]
    name = f"ix_{table.rpartition('.')[2]}_{'_'.join(cols)}"[:63]
    quoted = ", ".join(quote_identifier(c, "column") for c in cols)
    return f"CREATE INDEX IF NOT EXISTS {quote_identifier(name, 'index')} ON {target} ({quoted})"


@dataclasses.dataclass(frozen=True)
class IndexSuggestion:
    """An index on ``table`` over ``columns`` and why. ``ddl`` is the statement as advice shows
    it; ``QueryRunner.apply_index`` never runs that text, it builds the statement again from
    ``table`` and ``columns`` (:func:`index_ddl`) and refuses a suggestion whose ``ddl`` says
    something else."""

    table: str
    columns: tuple[str, ...]
    ddl: str
    reason: str
    sql: str = ""
    params: dict | None = None

    def statement(self) -> str:
        """The ``CREATE INDEX`` built from ``table`` and ``columns`` (validated, quoted)."""
        return index_ddl(self.table, self.columns)


_EQ = re.compile(r"\(?\s*\(?\"?(\w+)\"?\)?\s*=\s*[^=]")
_RANGE = re.compile(r"\(?\s*\(?\"?(\w+)\"?\)?\s*(?:>=|<=|>|<|BETWEEN)\s", re.IGNORECASE)


def _columns(text: str) -> tuple[list[str], list[str]]:
    """Equality and range columns named in a filter or WHERE clause."""
    eq = [c for c in _EQ.findall(text) if not c.isdigit()]
    rng = [c for c in _RANGE.findall(text) if c not in eq and not c.isdigit()]
    return list(dict.fromkeys(eq)), list(dict.fromkeys(rng))


def _where(sql: str) -> str:
    match = re.search(r"\bWHERE\b(.*?)(\bGROUP\b|\bORDER\b|\bLIMIT\b|$)", sql, re.I | re.S)
    return match.group(1) if match else ""


def advise(
    plan: QueryPlan, *, min_discard: float = 0.5, table_rows: dict[str, float] | None = None
) -> list[IndexSuggestion]:
    """Seq Scans that throw away most of the rows they read through a filter → an index on the
    filter's columns, equality columns first, then range columns.

    A PostgreSQL plan without ANALYZE has no actual rows: with ``table_rows`` (rows per table,
    e.g. ``pg_class.reltuples``, keyed like the suggestion's table), the planner's estimate of
    the rows kept stands in for them. A VERBOSE plan names each scan's schema: the suggested
    index is then on ``schema.table``."""
    suggestions = []
    for node in plan.seq_scans:
        if node.relation is None:
            continue
        table = f"{node.schema}.{node.relation}" if node.schema else node.relation
        if plan.dialect == "postgresql" and node.actual_rows is None:
            total = (table_rows or {}).get(table)
            kept = node.plan_rows or 0
            if not node.filter or not total or total - kept <= min_discard * total:
                continue
            text = node.filter
            reason = (
                f"Seq Scan on {node.relation} reads ~{total:.0f} rows to keep ~{kept:.0f} "
                f"(planner estimate) through the filter {node.filter}"
            )
        elif plan.dialect == "postgresql":
            kept = (node.actual_rows or 0) * (node.loops or 1)
            removed = (node.rows_removed_by_filter or 0) * (node.loops or 1)
            if not node.filter or removed <= min_discard * (kept + removed) or removed == 0:
                continue
            text = node.filter
            reason = (
                f"Seq Scan on {node.relation} read {kept + removed:.0f} rows and discarded "
                f"{removed:.0f} ({removed / (kept + removed):.0%}) through the filter {node.filter}"
            )
        else:
            text = _where(plan.sql)
            if not text:
                continue
            reason = f"full scan of {node.relation} ({node.detail}) for WHERE{text.rstrip()}"
        eq, rng = _columns(text)
        columns = tuple(eq + rng[:1])  # a B-tree can use one range column, after the equalities
        names = (node.relation, *columns, *((node.schema,) if node.schema else ()))
        if not columns or not all(map(is_identifier, names)):
            continue  # no index that could be created safely from these names
        ddl = index_ddl(table, columns)
        suggestions.append(IndexSuggestion(table, columns, ddl, reason, plan.sql, plan.params))
    return suggestions


#: the older name of :class:`QueryPlan` (a load generator and the cache drivers have plans too)
Plan = QueryPlan
