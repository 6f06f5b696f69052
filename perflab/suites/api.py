"""The API table (baseline, optimised cold and warm), the capacity curve, the load
generator's own ceiling beside wrk (Debian's package) on the same endpoint and connection
count in the same run, and its open-loop send lateness. The seed's capacity claims (minutes of
fresh services under 10,000 users) are a suite of their own: :mod:`perflab.suites.capacity`."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

from perflab.service import api_table, capacity_curve, run_load, running_service
from perflab.suites import SuiteRun, figure, register

WRK_MISSING = "wrk not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk"


def _wrk(url: str, seconds: int, connections: int) -> float | None:
    if shutil.which("wrk") is None:
        return None
    done = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", url],
        capture_output=True, text=True, timeout=seconds + 30, check=False,
    )  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    return float(found.group(1)) if found else None


def _ceiling(base: str, seconds: float, warmup: float, connections: int) -> dict:
    """perflab's generator and wrk on /health, one after the other, same connections."""
    url = f"{base}/health"
    ours = run_load(url, concurrency=connections, duration=seconds, warmup=warmup, progress=False)
    # named without the service's host and port: they change every run, and History follows a
    # benchmark by name
    ours = dataclasses.replace(ours, name=f"GET /health (load generator, {connections} conn.)")
    theirs = _wrk(url, max(int(seconds), 1), connections)
    gen = ours.params["generator"]
    out = {
        "loadgen_health_req_s": ours.throughput,
        "loadgen_cpu_us_per_request": gen["cpu_us_per_request"],
        "loadgen_saturated": gen["saturated"],
        "wrk_health_req_s": theirs if theirs is not None else WRK_MISSING,
    }
    if theirs:
        out["loadgen_vs_wrk"] = ours.throughput / theirs
    return {"checks": out, "result": ours}


def _lateness(base: str, rate: float, seconds: float, warmup: float) -> dict:
    """The open-loop schedule's accuracy at ``rate`` req/s on /ping (no dependencies)."""
    r = run_load(f"{base}/ping", rate=rate, concurrency=32, duration=seconds, warmup=warmup,
                 progress=False)  # fmt: skip
    r = dataclasses.replace(r, name=f"GET /ping (open loop, {rate:g} req/s)")
    gen = r.params["generator"]
    return {
        "checks": {
            f"open_loop_{rate:g}/send_lateness_p99_ms": gen["send_lateness_p99_ms"],
            f"open_loop_{rate:g}/own_lateness_p99_ms": gen["own_lateness_p99_ms"],
            f"open_loop_{rate:g}/cpu_us_per_request": gen["cpu_us_per_request"],
            f"open_loop_{rate:g}/saturated": gen["saturated"],
        },
        "result": r,
    }


@register(
    "api",
    "baseline vs optimized endpoints cold and warm (the seed's table), the capacity curve, "
    "load-generator ceiling beside wrk",
    processes=1,  # the service is a process of its own; its rounds interleave the arms
)
def api(quick: bool) -> SuiteRun:
    # seconds per arm and endpoint, in 6 interleaved rounds: the speedups are 3-50x and their
    # CIs clear the claims from 3 s on (8 s took 2 min more of `make demo` for nothing it showed)
    duration, warmup = (0.6, 0.2) if quick else (3.0, 0.5)
    levels = (1, 2, 4, 8) if quick else (1, 2, 4, 8, 16, 32, 64)
    with running_service("quick") as base:
        table, results = api_table(
            base, concurrency=8, duration=duration, warmup=warmup, rounds=2 if quick else 6
        )
        curve = capacity_curve(
            f"{base}/optimized/signals?symbol=S0001",
            levels=levels,
            duration=0.3 if quick else 1.5,
            warmup=0.1 if quick else 0.3,
        )
        ceiling = _ceiling(base, max(duration, 1.0), warmup, 16)
        late = _lateness(base, 300.0 if quick else 1000.0, 0.8 if quick else 3.0, warmup)
    checks: dict = {}
    for endpoint, row in table.iterrows():
        key = endpoint.split(" ", 1)[1].strip("/").replace("/", "_")
        checks[f"{key}/speedup_p50"] = figure(row["speedup p50"], *row["speedup 95% CI"])
        checks[f"{key}/speedup_p50_cold"] = figure(
            row["speedup p50 cold"], *row["speedup cold 95% CI"]
        )
        checks[f"{key}/throughput_ratio"] = figure(
            row["throughput ratio"], *row["throughput ratio 95% CI"]
        )
        checks[f"{key}/baseline_p50_ms"] = row["baseline p50 ms"]
        for arm in ("optimized warm", "optimized cold"):
            tag = arm.replace(" ", "_").replace("optimized_", "")
            for q in ("p50", "p99", "max"):
                checks[f"{key}/optimized_{tag}_{q}_ms"] = figure(
                    row[f"{arm} {q} ms"], *row[f"{arm} {q} 95% CI"]
                )
        checks[f"{key}/optimized_p50_ms"] = checks[f"{key}/optimized_warm_p50_ms"]
        checks[f"{key}/optimized_p99_over_p50"] = (
            row["optimized warm p99 ms"] / row["optimized warm p50 ms"]
        )
    for row in curve.itertuples():
        checks[f"capacity/c{row.concurrency}/req_s"] = row.throughput
        checks[f"capacity/c{row.concurrency}/p99_ms"] = row.p99_ms
    checks.update(ceiling["checks"])
    checks.update(late["checks"])
    tables = {"api": table.reset_index(), "capacity": curve}
    runs = [*results, ceiling["result"], late["result"]]
    return SuiteRun(suite="api", results=runs, checks=checks, tables=tables)
