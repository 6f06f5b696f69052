"""The seed's capacity claims: concurrent keep-alive users (1,000 and 10,000, each sending
``GET /signals`` every 50 s), peak database connections and peak service RSS, baseline against
optimised, a fresh service per variant and replicate. Minutes of work, so a report runs it only
when asked (``perflab report --capacity``, notebook 04's ``capacity`` parameter) and the claims
audit says how to get it otherwise."""

from __future__ import annotations

from perflab import servers
from perflab.service import capacity_claims, summarise_capacity
from perflab.settings import resolve
from perflab.suites import SuiteRun, figure, register


@register(
    "capacity",
    "concurrent users, peak DB connections and peak RSS, baseline vs optimised (minutes)",
    processes=1,  # each replicate is a fresh service process already
)
def capacity(quick: bool) -> SuiteRun:
    database_url = servers.start(resolve()).database_url
    users = capacity_claims(
        database_url,
        users=(100, 1_000) if quick else (1_000, 10_000),
        duration=5.0 if quick else 30.0,
    )
    checks = {
        name: figure(*value) if isinstance(value, tuple) else value
        for name, value in summarise_capacity(users).items()
    }
    return SuiteRun(suite="capacity", results=[], checks=checks, tables={"users": users})
