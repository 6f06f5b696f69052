"""The seed's quantitative claims as data, and the audit that sets each beside what perflab
measured (``../shared/seed/performance-optimization-summary.md``).

A claim names the figure that tests it (``suite``, ``check``) and how to judge it: ``at_most``
(the measured value must not exceed the claimed one, e.g. latency), ``at_least`` (a speedup or
rate must reach it), or ``None`` when this machine cannot measure it (the reason says why).

Verdicts come from the figure's confidence interval, never its point estimate alone:
``confirmed`` when the whole interval clears the claim, ``not reproduced`` when it lies wholly on
the other side, ``inconclusive`` when it straddles the claim (or the figure has no interval).
A figure from a deterministic computation (``exact``, e.g. a cache simulation) is its own interval.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from perflab.settings import Settings

__all__ = [
    "CLAIMS",
    "Claim",
    "audit",
    "audit_published",
    "history_name",
    "judge",
    "learned_noise",
    "with_run_noise",
]


@dataclasses.dataclass(frozen=True)
class Claim:
    area: str
    text: str
    claimed: float | None
    unit: str
    suite: str | None = None
    check: str | None = None
    judge: str | None = None  # "at_most" | "at_least" | None (not measurable here)
    scale: float = 1.0  # measured × scale → the claim's unit
    reason: str = ""
    exact: bool = False  # a deterministic figure (a simulation): no sampling noise


CLAIMS: list[Claim] = [
    Claim("cache", "L1 (memory) cache hit < 0.1 ms", 0.1, "ms", "cache", "l1_get_ns", "at_most", 1e-6),
    Claim("cache", "L2 (Redis) cache hit < 1 ms", 1.0, "ms", "cache", "l2_get_us", "at_most", 1e-3),
    Claim("cache", "Cache hit rate 85–95 % in production", 85.0, "%", "cache", "hit/zipf1/cap10%/tinylfu", "at_least", 100.0,
          "measured on a synthetic Zipf(1.0) trace with 10 % capacity, the best policy; production traffic is not available here", exact=True),
    Claim("database", "Connection pooling: 50 % less connection overhead (2x)", 2.0, "x", "db", "pooling_speedup", "at_least"),
    Claim("database", "Query caching: 100x for repeated queries", 100.0, "x", "db", "query_cache_speedup", "at_least"),
    Claim("database", "Batch operations: 1000x throughput", 1000.0, "x", "db", "batch_insert_vs_row_by_row", "at_least"),
    Claim("database", "Prepared statements: 2–3x faster", 2.0, "x", "db", "prepared_speedup", "at_least"),
    Claim("database", "Materialized views: 10–100x for aggregations", 10.0, "x", "db", "matview_read_speedup", "at_least"),
    Claim("api", "GET /signals 150 → 5 ms (30x)", 30.0, "x", "api", "signals/speedup_p50", "at_least"),
    Claim("api", "GET /market-data/stream 50 → 1 ms (50x)", 50.0, "x", "api", "market-data_stream/speedup_p50", "at_least"),
    Claim("api", "POST /portfolio/optimize 500 → 50 ms (10x)", 10.0, "x", "api", "portfolio_optimize/speedup_p50", "at_least"),
    Claim("api", "POST /batch/signals 1000 → 100 ms (10x)", 10.0, "x", "api", "batch_signals/speedup_p50", "at_least"),
    Claim("api", "GET /signals optimized p50 = 5 ms", 5.0, "ms", "api", "signals/optimized_p50_ms", "at_most"),
    Claim("capacity", "API requests/s 500 → 5,000 (10x)", 10.0, "x", "api", "signals/throughput_ratio", "at_least",
          reason="GET /signals throughput ratio under 8 clients on 2 cores"),
    Claim("capacity", "Concurrent users 1,000 → 10,000 (10x)", 10.0, "x", "capacity", "users_served_ratio", "at_least",
          reason="users served (optimised / baseline): the largest of 1,000 and 10,000 keep-alive connections, each sending GET /signals every 50 s (open loop, 30 s), with < 0.1 % failed and p99 < 1 s in every replicate; a pass/fail at two levels, so no CI (perflab bench capacity)", exact=True),
    Claim("capacity", "Database connections 100 → 50 (2x fewer)", 2.0, "x", "capacity", "db_connections_ratio", "at_least",
          reason="peak server-side backends (pg_stat_activity, by the service's application_name), baseline / optimised, a fresh service per variant and replicate under 10,000 users (perflab bench capacity)"),
    Claim("capacity", "Memory 16 GB → 8 GB (2x less)", 2.0, "x", "capacity", "rss_ratio", "at_least",
          reason="peak RSS of the service process, baseline / optimised, a fresh service per variant and replicate under 10,000 users (perflab bench capacity)"),
]  # fmt: skip


def judge(claim: Claim, value: float, low: float | None, high: float | None) -> str:
    """confirmed / not reproduced / inconclusive from a measured value and its CI."""
    if claim.exact:
        low = high = value
    if low is None or high is None or low != low or high != high:
        return "inconclusive"
    if claim.judge == "at_most":
        return (
            "confirmed"
            if high <= claim.claimed
            else "not reproduced"
            if low > claim.claimed
            else "inconclusive"
        )
    return (
        "confirmed"
        if low >= claim.claimed
        else "not reproduced"
        if high < claim.claimed
        else "inconclusive"
    )


def history_name(claim: Claim) -> str:
    """The name a claim's measured figure is kept under in the history (one value per report),
    from which later reports learn how much the figure moves between whole runs."""
    return f"claim/{claim.suite}/{claim.check}"


def learned_noise(history: Any, mode: str) -> dict[str, float]:
    """Claim text → how much its figure differed between earlier reports of ``mode`` (quick or
    full), from ``history`` (a ``bench.History``); claims with fewer than four such reports are
    left out."""
    found = {}
    for claim in CLAIMS:
        if claim.suite and claim.check:
            noise = history.run_noise(history_name(claim), tag=mode)
            if noise is not None:
                found[claim.text] = noise[0]
    return found


def with_run_noise(
    value: float, low: float | None, high: float | None, sd: float
) -> tuple[float | None, float | None]:
    """A figure's 95 % interval widened by ``sd`` (log units), how much whole runs of it differ:
    in log space the half-widths add in quadrature with 1.96 sd. Without an interval of its
    own, the run noise alone makes one."""
    if not (value > 0 and math.isfinite(value) and sd > 0):
        return low, high
    extra = 1.96 * sd
    centre = math.log(value)
    below = centre - math.log(low) if low is not None and low > 0 else 0.0
    above = math.log(high) - centre if high is not None and high > 0 else 0.0
    return (
        math.exp(centre - math.hypot(below, extra)),
        math.exp(centre + math.hypot(above, extra)),
    )


def audit(runs: Mapping[str, Any], *, run_noise: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per claim: claimed, measured and its 95 % CI (in the claim's unit), verdict,
    conditions. ``runs``: suite name → SuiteRun (or its ``checks`` dict).

    ``run_noise``: claim text → how much the figure differs between whole runs (log units,
    ``History.run_noise`` of :func:`history_name`). A suite's interval comes from rounds and
    processes inside one run; a figure near its claim then read "confirmed" in one report and
    "not reproduced" in the next (materialized views 14.9x, CI 14.1-15.7, then 7.1x, CI
    6.3-8.0, over 12 quick reports here). With the run noise the interval is one a rerun keeps."""
    from perflab.suites import figure_parts

    noise = run_noise or {}
    rows = []
    for claim in CLAIMS:
        checks = (
            getattr(runs.get(claim.suite), "checks", runs.get(claim.suite)) if claim.suite else None
        )
        raw = None if not checks or claim.check not in checks else checks[claim.check]
        value, low, high = figure_parts(raw)
        if claim.judge is None:
            verdict = "not measurable here"
        elif value is None:
            verdict = "not measured"
        else:
            value *= claim.scale
            low = None if low is None else low * claim.scale
            high = None if high is None else high * claim.scale
            if claim.text in noise and not claim.exact:
                low, high = with_run_noise(value, low, high, noise[claim.text])
            verdict = judge(claim, value, low, high)
        rows.append(
            {
                "area": claim.area,
                "claim": claim.text,
                "claimed": claim.claimed,
                "measured": value,
                "ci_low": value if claim.exact and value is not None else low,
                "ci_high": value if claim.exact and value is not None else high,
                "unit": claim.unit,
                "verdict": verdict,
                "conditions": (
                    f"not measured in this run: {_how(claim.suite)}. "
                    if verdict == "not measured"
                    else ""
                )
                + (claim.reason or f"perflab bench {claim.suite} ({claim.check})"),
            }
        )
    return pd.DataFrame(rows)


def _how(suite: str | None) -> str:
    """How to measure a claim a run left out: the long suites say it themselves."""
    if suite == "capacity":  # minutes of fresh services: a report runs it only when asked
        return "run perflab report --capacity (or perflab bench capacity)"
    return f"run perflab bench {suite}"


def audit_published(*, quick: bool, settings: Settings | None = None) -> pd.DataFrame:
    """Notebook 05's audit: the suites this report's notebooks published (cache, db and api run
    here when one is missing, and are published), judged against the seed's claims with each
    figure's run-to-run noise from earlier reports of the mode, as the report's index does (a
    figure near its claim must not flip between confirmed and not reproduced). A DataFrame with
    a ``judge`` column (at_least / at_most / None)."""
    from perflab import suites
    from perflab.bench import History
    from perflab.settings import resolve

    settings = settings or resolve()
    runs: dict[str, Any] = dict(suites.published(settings.results_dir))
    for name in ("cache", "db", "api"):
        if name not in runs:
            runs[name] = suites.run_suite(name, quick=quick)
            suites.publish(runs[name], settings.results_dir)
    history = History(settings.history_url or settings.outputs_dir / "history.sqlite")
    try:
        noise = learned_noise(history, "quick" if quick else "full")
    finally:
        history.close()
    table = audit(runs, run_noise=noise)
    table["judge"] = table["claim"].map({c.text: c.judge for c in CLAIMS})
    return table
