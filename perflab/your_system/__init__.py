"""Point the lab at a system perflab did not create (notebooks 07-09): the pieces that need the
harness beside the subject (a verified index speedup, a service's endpoints under load)."""

from perflab.your_system.database import verify_index
from perflab.your_system.service import (
    Endpoint,
    ServiceRun,
    check_base_url,
    latencies,
    load_endpoints,
    parse_endpoints,
    read_results,
    save_results,
    status_table,
    verdicts,
)

__all__ = [
    "Endpoint",
    "ServiceRun",
    "check_base_url",
    "latencies",
    "load_endpoints",
    "parse_endpoints",
    "read_results",
    "save_results",
    "status_table",
    "verdicts",
    "verify_index",
]
