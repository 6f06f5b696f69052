"""The pooled query runner: read/write pools, query cache, prepared statements, COPY batches,
temp-table bulk updates, materialized views, EXPLAIN as data, index advice."""

from perflab.db.bulk import BatchInsertError
from perflab.db.explain import IndexSuggestion, Plan, PlanNode
from perflab.db.identifiers import IdentifierError, check_identifier, quote_identifier
from perflab.db.runner import PoolConfig, QueryRunner
from perflab.db.views import MaterializedView

__all__ = [
    "BatchInsertError",
    "IdentifierError",
    "IndexSuggestion",
    "MaterializedView",
    "Plan",
    "PlanNode",
    "PoolConfig",
    "QueryRunner",
    "check_identifier",
    "quote_identifier",
]
