"""The open-loop schedule's send lateness at a fixed rate, per event loop (issue 24: p99
≤ 1 ms at 1,000 req/s quiet). Runs against the demo service's /ping, alternating the loops.

    .venv/bin/python benchmarks/open_loop.py [--rate 1000] [--seconds 8] [--reps 2]
"""

from __future__ import annotations

import argparse

from perflab.service import run_load
from perflab.service.api_runs import running_service

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--loops", default="uvloop,select,asyncio")
    args = parser.parse_args()
    with running_service("quick") as base:
        for _ in range(args.reps):
            for loop in args.loops.split(","):
                r = run_load(
                    f"{base}/ping",
                    rate=args.rate,
                    concurrency=32,
                    duration=args.seconds,
                    warmup=1.0,
                    loop=loop,
                    progress=False,
                )
                g = r.params["generator"]
                print(
                    f"{loop:8s} send lateness p99 {g['send_lateness_p99_ms']:.2f} ms, own "
                    f"{g['own_lateness_p99_ms']:.2f} ms, {g['cpu_us_per_request']:.0f} µs CPU/req"
                )
