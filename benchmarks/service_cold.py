"""Cold and warm optimised requests against the baseline at 8 clients (issue 24's service
target: cold optimised ≥ 1.0x the baseline's req/s, warm ≥ 40x), every endpoint or some.

    .venv/bin/python benchmarks/service_cold.py [--duration 12] [--rounds 6] [--only signals]

Interleaved rounds (perflab.service.api_runs.api_table): baseline, optimised cold
(``Cache-Control: no-cache``) and optimised warm take turns, so drift falls on all three.
"""

from __future__ import annotations

import argparse

from perflab.service.api_runs import ENDPOINTS, api_table, running_service

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--only", default="", help="endpoints whose label contains this")
    args = parser.parse_args()
    chosen = [e for e in ENDPOINTS if args.only in e[0]]
    with running_service("quick") as base:
        table, results = api_table(
            base, concurrency=8, duration=args.duration, rounds=args.rounds, endpoints=chosen
        )
    by_arm = {(r.params["endpoint"], r.params["arm"]): r for r in results}
    for endpoint, row in table.iterrows():
        base_rate = by_arm[(endpoint, "baseline")].throughput
        cold_rate = by_arm[(endpoint, "optimized cold")].throughput
        low, high = row["speedup cold 95% CI"]
        print(
            f"{endpoint:28s} req/s baseline {base_rate:8.1f}  cold {cold_rate:8.1f} "
            f"({cold_rate / base_rate:.2f}x)  warm {row['optimized warm req/s']:8.1f} "
            f"({row['throughput ratio']:.1f}x)  p50 speedup cold {row['speedup p50 cold']:.2f}x "
            f"[{low:.2f}, {high:.2f}] warm {row['speedup p50 warm']:.1f}x"
        )
