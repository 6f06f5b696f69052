"""The load generator's own ceiling, side by side in one run against one service: wrk (C,
the reference), perflab's generator (raw asyncio + httptools) and a plain aiohttp loop (the
candidate client it was measured against), each on ``/health`` at the same connection count;
then the open-loop schedule's send lateness at a fixed rate.

    PYTHONPATH=. .venv/bin/python benchmarks/loadgen.py [--url http://127.0.0.1:8765/health]
        [--connections 16] [--seconds 8] [--reps 2] [--rate 1000]

Client CPU per request is the client process's CPU time (``time.process_time``) over the
requests it finished; wrk's is not measured (it is a separate C process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import time

from perflab.service import run_load


def wrk(url: str, connections: int, seconds: int) -> float | None:
    if shutil.which("wrk") is None:
        return None
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True, text=True, check=False, timeout=seconds + 30,
    )  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    return float(found.group(1)) if found else None


def aiohttp_loop(url: str, connections: int, seconds: float) -> tuple[float, float]:
    """(req/s, client CPU µs per request) of ``connections`` aiohttp tasks back to back."""
    import aiohttp

    async def main() -> tuple[int, float]:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            n = 0
            end = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal n
                while time.perf_counter() < end:
                    async with session.get(url) as response:
                        await response.read()
                    n += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            return n, time.perf_counter() - t0

    cpu0 = time.process_time()
    n, wall = asyncio.run(main())
    return n / wall, (time.process_time() - cpu0) / n * 1e6


def ours(url: str, connections: int, seconds: float) -> tuple[float, float, dict]:
    r = run_load(url, concurrency=connections, duration=seconds, warmup=0.5, processes=1)
    gen = r.params["generator"]
    return r.throughput, gen["cpu_us_per_request"], gen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8765/health")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--rate", type=float, default=1000.0)
    a = p.parse_args()
    rows = []
    for rep in range(a.reps):
        w = wrk(a.url, a.connections, a.seconds)
        o_rate, o_cpu, gen = ours(a.url, a.connections, a.seconds)
        h_rate, h_cpu = aiohttp_loop(a.url, a.connections, a.seconds)
        rows.append({"rep": rep, "wrk_req_s": w, "perflab_req_s": o_rate,
                     "perflab_cpu_us": o_cpu, "perflab_saturated": gen["saturated"],
                     "aiohttp_req_s": h_rate, "aiohttp_cpu_us": h_cpu,
                     "perflab_vs_wrk": o_rate / w if w else None})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    r = run_load(a.url, rate=a.rate, concurrency=a.connections, duration=a.seconds, warmup=0.5)
    gen = r.params["generator"]
    print(
        json.dumps(
            {
                "open_loop_rate": a.rate,
                **{
                    k: gen[k]
                    for k in (
                        "send_lateness_p50_ms",
                        "send_lateness_p99_ms",
                        "send_lateness_max_ms",
                        "own_lateness_p99_ms",
                        "cpu_us_per_request",
                        "saturated",
                        "reason",
                    )
                },
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
