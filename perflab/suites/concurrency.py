"""Threads vs asyncio tasks vs processes, on I/O-bound work (waiting) and CPU-bound work
(arithmetic under the GIL). One operation = a batch of jobs, so the three compare directly."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from perflab import bench
from perflab.suites import register

IO_JOBS, IO_WAIT = 32, 0.002
CPU_JOBS, CPU_N = 4, 60_000


def wait_io(_: int = 0) -> None:
    time.sleep(IO_WAIT)


def burn_cpu(_: int = 0) -> int:
    return sum(i * i for i in range(CPU_N))


@register("concurrency", "threads vs asyncio tasks vs processes on I/O- and CPU-bound batches")
def concurrency(quick: bool) -> list[bench.Result]:
    min_time = 0.3 if quick else 0.8
    params = {"io_jobs": IO_JOBS, "io_wait_s": IO_WAIT, "cpu_jobs": CPU_JOBS, "cpu_n": CPU_N}
    results = []
    with ThreadPoolExecutor(IO_JOBS) as threads, ProcessPoolExecutor(2) as processes:
        list(processes.map(wait_io, range(2)))  # start the workers outside the timing

        async def io_tasks() -> None:
            await asyncio.gather(*(asyncio.sleep(IO_WAIT) for _ in range(IO_JOBS)))

        def run(fn, name: str) -> None:
            results.append(bench.run(fn, name=name, min_time=min_time, params=params, gc="enable"))

        run(lambda: [wait_io() for _ in range(IO_JOBS)], "concurrency/io-serial")
        run(lambda: list(threads.map(wait_io, range(IO_JOBS))), "concurrency/io-threads")
        run(io_tasks, "concurrency/io-asyncio")
        run(lambda: list(processes.map(wait_io, range(IO_JOBS))), "concurrency/io-processes")
        run(lambda: [burn_cpu() for _ in range(CPU_JOBS)], "concurrency/cpu-serial")
        run(lambda: list(threads.map(burn_cpu, range(CPU_JOBS))), "concurrency/cpu-threads")
        run(lambda: list(processes.map(burn_cpu, range(CPU_JOBS))), "concurrency/cpu-processes")
    return results
