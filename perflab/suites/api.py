"""The API table and the capacity curve on the quick preset, and the load generator's own
ceiling beside wrk (Debian's package) on a trivial endpoint, in the same run."""

from __future__ import annotations

import re
import shutil
import subprocess

from perflab.service import api_table, capacity_curve, run_load, running_service
from perflab.suites import SuiteRun, figure, register


def _wrk(url: str, seconds: int, connections: int) -> float | None:
    if shutil.which("wrk") is None:
        return None
    done = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", url],
        capture_output=True, text=True, timeout=seconds + 30, check=False,
    )  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    return float(found.group(1)) if found else None


@register(
    "api",
    "baseline vs optimized endpoints (the seed's table), capacity, load-generator ceiling",
    processes=1,  # the service is a process of its own; its rounds interleave A and B
)
def api(quick: bool) -> SuiteRun:
    duration, warmup = (0.7, 0.3) if quick else (8.0, 1.0)
    levels = (1, 2, 4, 8) if quick else (1, 2, 4, 8, 16, 32, 64)
    with running_service("quick") as base:
        table, results = api_table(
            base, concurrency=8, duration=duration, warmup=warmup, rounds=4 if quick else 6
        )
        curve = capacity_curve(
            f"{base}/optimized/signals?symbol=S0001", levels=levels, duration=0.5 if quick else 3.0
        )
        ours = run_load(
            f"{base}/health", concurrency=16, duration=max(duration, 1.0), warmup=warmup
        )
        theirs = _wrk(f"{base}/health", max(int(duration), 1), 16)
    checks: dict = {}
    for endpoint, row in table.iterrows():
        key = endpoint.split(" ", 1)[1].strip("/").replace("/", "_")
        checks[f"{key}/speedup_p50"] = figure(row["speedup p50"], *row["speedup 95% CI"])
        checks[f"{key}/throughput_ratio"] = figure(
            row["throughput ratio"], *row["throughput ratio 95% CI"]
        )
        checks[f"{key}/baseline_p50_ms"] = row["baseline p50 ms"]
        checks[f"{key}/optimized_p50_ms"] = figure(
            row["optimized p50 ms"], *row["optimized p50 95% CI"]
        )
    for row in curve.itertuples():
        checks[f"capacity/c{row.concurrency}/req_s"] = row.throughput
        checks[f"capacity/c{row.concurrency}/p99_ms"] = row.p99_ms
    checks["loadgen_health_req_s"] = ours.summary()["throughput"]
    checks["wrk_health_req_s"] = theirs if theirs is not None else "wrk not installed"
    if theirs:
        checks["loadgen_vs_wrk"] = checks["loadgen_health_req_s"] / theirs
    tables = {"api": table.reset_index(), "capacity": curve}
    return SuiteRun(suite="api", results=[*results, ours], checks=checks, tables=tables)
