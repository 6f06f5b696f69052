"""Issue 12's targets, measured in one run against fresh ``perflab serve`` processes:

1. the generator's ceiling on ``/health`` beside ``wrk -t1 -cN -d8s`` and an aiohttp loop,
   same connection count, one after the other (``--reps`` times), with client CPU/request;
2. the open-loop schedule's send lateness at ``--rate`` req/s on ``/ping``;
3. optimised vs baseline ``GET /signals`` at 4 clients (interleaved rounds): throughput ratio
   with its CI, and the optimised warm arm's p99 / p50;
4. the capacity claims: 1,000 and 10,000 held keep-alive connections (open loop), errors and
   p99, peak DB connections and RSS per variant.

    PYTHONPATH=. .venv/bin/python benchmarks/issue12.py [--reps 2] [--skip-capacity]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from loadgen import aiohttp_loop, ours, wrk

from perflab import servers
from perflab.bench import stats
from perflab.service import (
    ENDPOINTS,
    api_table,
    capacity_claims,
    run_load,
    running_service,
    summarise_capacity,
)
from perflab.settings import resolve


def show(**row: object) -> None:
    print(json.dumps(row, default=str), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--skip-capacity", action="store_true")
    p.add_argument("--only-signals", action="store_true", help="only the GET /signals figures")
    a = p.parse_args()
    with running_service("quick") as base:
        url = f"{base}/health"
        rates: dict[str, list[float]] = {"wrk": [], "perflab": [], "aiohttp": []}
        # the order rotates: a slow spell falls on each in turn
        for rep in range(0 if a.only_signals else a.reps):
            got: dict = {}
            names = ["wrk", "perflab", "aiohttp"]
            for name in names[rep % 3 :] + names[: rep % 3]:
                if name == "wrk":
                    got["wrk"] = wrk(url, a.connections, 8)
                elif name == "perflab":
                    got["perflab"] = ours(url, a.connections, 8)
                else:
                    got["aiohttp"] = aiohttp_loop(url, a.connections, 8)
            w, (o_rate, o_cpu, gen), (h_rate, h_cpu) = got["wrk"], got["perflab"], got["aiohttp"]
            rates["wrk"].append(w or float("nan"))
            rates["perflab"].append(o_rate)
            rates["aiohttp"].append(h_rate)
            show(target="ceiling /health", rep=rep, connections=a.connections, wrk_req_s=w,
                 perflab_req_s=o_rate, perflab_cpu_us=o_cpu,
                 perflab_vs_wrk=o_rate / w if w else None,
                 perflab_saturated=gen["saturated"], perflab_reason=gen["reason"],
                 perflab_loop_lag_p99_ms=gen["loop_lag_p99_ms"],
                 aiohttp_req_s=h_rate, aiohttp_cpu_us=h_cpu)  # fmt: skip
        if a.reps >= 2 and rates["wrk"] and all(x == x for x in rates["wrk"]):
            for name in ("perflab", "aiohttp"):
                r = stats.replicate_ratio(np.array(rates["wrk"]), np.array(rates[name]))
                show(target=f"{name} / wrk req/s", ratio=r.ratio, ci=(r.ci_low, r.ci_high),
                     reps=a.reps)  # fmt: skip
        if not a.only_signals:
            r = run_load(f"{base}/ping", rate=a.rate, concurrency=32, duration=8, warmup=1)
            show(target=f"open loop {a.rate:g}/s /ping", **r.params["generator"],
                 statuses=r.params["statuses"], p99_ms=r.summary()["p99"] / 1e6)  # fmt: skip
        table, _ = api_table(base, concurrency=4, duration=8, warmup=1, rounds=6,
                             endpoints=[ENDPOINTS[0]])  # fmt: skip
        row = table.iloc[0]
        show(target="GET /signals 4 clients", **{k: row[k] for k in (
            "baseline req/s", "optimized warm req/s", "throughput ratio", "throughput ratio 95% CI",
            "baseline p50 ms", "optimized warm p50 ms", "optimized warm p99 ms",
            "optimized warm max ms", "optimized cold p50 ms", "speedup p50 warm",
            "speedup warm 95% CI", "warm GC pauses", "warm GC max ms", "warm loop stalls",
            "warm stall max ms", "warm stalls held", "warm stalls preempted",
            "warm stalls blocked", "warm held stall max ms", "warm cache loads",
            "warm load max ms", "generator saturated")},
            p99_over_p50=row["optimized warm p99 ms"] / row["optimized warm p50 ms"])  # fmt: skip
    if not a.skip_capacity:
        frame = capacity_claims(servers.start(resolve()).database_url, users=(1_000, 10_000),
                                duration=30.0, replicates=2)  # fmt: skip
        for rec in frame.to_dict(orient="records"):
            show(target="capacity", **rec)
        show(target="capacity summary", **summarise_capacity(frame))


if __name__ == "__main__":
    main()
