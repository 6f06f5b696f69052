"""Threads vs asyncio tasks vs processes, on I/O-bound work (waiting) and CPU-bound work
(arithmetic under the GIL). One operation = a batch of jobs, so the three compare directly.

The report's headline pairs (serial → threads, serial → asyncio, serial → processes) are
measured interleaved (``bench.ab``), so each ratio has paired replicates and an answer; two
separate ``bench.run`` calls in one process are one replicate each and could not say even that
a 23x speedup is one."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from perflab import bench
from perflab.suites import pair, register

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

        def headline(baseline, candidate, base_name: str, cand_name: str) -> None:
            c = bench.ab(baseline, candidate, name=cand_name, budget=3.0 if quick else 10.0)
            results.extend(pair(c, base_name, cand_name))

        def io_serial() -> None:
            for _ in range(IO_JOBS):
                wait_io()

        def cpu_serial() -> None:
            for _ in range(CPU_JOBS):
                burn_cpu()

        headline(io_serial, lambda: list(threads.map(wait_io, range(IO_JOBS))),
                 "concurrency/io-serial", "concurrency/io-threads")  # fmt: skip
        headline(io_serial, io_tasks, "concurrency/io-serial/beside-asyncio",
                 "concurrency/io-asyncio")  # fmt: skip
        run(lambda: list(processes.map(wait_io, range(IO_JOBS))), "concurrency/io-processes")
        headline(cpu_serial, lambda: list(processes.map(burn_cpu, range(CPU_JOBS))),
                 "concurrency/cpu-serial", "concurrency/cpu-processes")  # fmt: skip
        run(lambda: list(threads.map(burn_cpu, range(CPU_JOBS))), "concurrency/cpu-threads")
    return results
