"""The optimised service's two async database paths side by side in one run, interleaved
(A B B A …): SQLAlchemy's async engine on psycopg vs the sync ``QueryRunner`` in a worker
thread, each driven by N concurrent tasks on one event loop fetching one symbol's bars (the
cold-cache query of GET /signals), and a trivial SELECT 1.

    PYTHONPATH=. .venv/bin/python benchmarks/service_db.py [--tasks 8] [--seconds 1] [--rounds 6]

Needs the service's table (``perflab serve`` loads it) in the lab's database/schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np

from perflab.db import QueryRunner
from perflab.service.async_db import EngineReader, ThreadReader

BARS = "SELECT symbol, ts, open, high, low, close, volume FROM service_bars WHERE symbol = :symbol ORDER BY ts"  # noqa: E501


async def drive(reader, sql: str, params: dict, tasks: int, seconds: float) -> tuple[float, float]:
    lat: list[int] = []
    end = time.perf_counter() + seconds

    async def one() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter_ns()
            await reader.fetch(sql, params)
            lat.append(time.perf_counter_ns() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(tasks)))
    return len(lat) / (time.perf_counter() - t0), float(np.median(lat)) / 1e6


async def main(a: argparse.Namespace) -> None:
    runner = QueryRunner()
    readers = {
        "engine": EngineReader(runner.read_url, runner.schema),
        "thread": ThreadReader(runner),
    }
    out: dict = {m: {"bars": [], "select1": []} for m in readers}
    for r in range(a.rounds):
        order = ("engine", "thread") if r % 2 == 0 else ("thread", "engine")
        for mode in order:
            for name, sql, params in (
                ("bars", BARS, {"symbol": "S0001"}),
                ("select1", "SELECT 1", {}),
            ):
                out[mode][name].append(await drive(readers[mode], sql, params, a.tasks, a.seconds))
    for mode, by in out.items():
        for name, rows in by.items():
            rates = [x[0] for x in rows[1:]]  # the first round warms
            p50 = [x[1] for x in rows[1:]]
            print(
                json.dumps(
                    {
                        "mode": mode,
                        "query": name,
                        "tasks": a.tasks,
                        "req_s_median": float(np.median(rates)),
                        "p50_ms_median": float(np.median(p50)),
                        "rounds": len(rates),
                    }
                )
            )
    await readers["engine"].aclose()
    runner.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=6)
    asyncio.run(main(p.parse_args()))
