"""The pooled query runner: read/write pools, query cache, prepared statements, COPY batches,
temp-table bulk updates, materialized views, EXPLAIN as data, index advice, and
advice for a database perflab did not create (``advise_workload``)."""

from perflab.db.advisor import Advice, advise_workload, apply_suggestion
from perflab.db.bulk import BatchInsertError
from perflab.db.explain import IndexSuggestion, Plan, PlanNode, QueryPlan, index_ddl
from perflab.db.identifiers import IdentifierError, check_identifier, quote_identifier
from perflab.db.runner import PoolConfig, QueryRunner
from perflab.db.statements import WorkloadQuery, queries_from_file, queries_from_slow_log
from perflab.db.views import MaterializedView

__all__ = [
    "Advice",
    "BatchInsertError",
    "IdentifierError",
    "IndexSuggestion",
    "MaterializedView",
    "Plan",
    "PlanNode",
    "PoolConfig",
    "QueryPlan",
    "QueryRunner",
    "WorkloadQuery",
    "advise_workload",
    "apply_suggestion",
    "check_identifier",
    "index_ddl",
    "queries_from_file",
    "queries_from_slow_log",
    "quote_identifier",
]
