"""The demo HTTP service (baseline vs optimised endpoints) and its load generator."""

from perflab.service.api_runs import (
    ENDPOINTS,
    api_table,
    capacity_curve,
    running_service,
    service_process,
    terminate,
)
from perflab.service.app import MAX_BATCH, create_app
from perflab.service.capacity import capacity_claims, summarise_capacity
from perflab.service.load import default_processes, merge_parts, preflight, run_load

__all__ = [
    "ENDPOINTS",
    "MAX_BATCH",
    "api_table",
    "capacity_claims",
    "capacity_curve",
    "create_app",
    "default_processes",
    "merge_parts",
    "preflight",
    "run_load",
    "running_service",
    "service_process",
    "summarise_capacity",
    "terminate",
]
