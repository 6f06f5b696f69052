"""The harness checking itself, in one run:

* overhead: an empty call through ``bench.run`` beside timeit's figure for the same call;
* stability: the median of ``sorted()`` quiet, and again while two busy processes load the cores;
* honesty: A/A pairs of identical code (how many are judged faster or slower) and pairs with
  a true 10 % slowdown (how many are judged slower), within one run (``bench.ab``) and across
  separate runs of fresh worker processes (:func:`perflab.bench.selfcheck.cross_run`) — this
  machine's own false-positive rate, so a user sees whether it is fit to judge;
* time: the wall-clock cost of one default ``bench.run``;
* plus async and concurrent targets, so every adapter is exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import time
import timeit
from collections.abc import Iterator

import numpy as np

from perflab import bench
from perflab.bench import selfcheck
from perflab.suites import SuiteRun, register

SPIN = "while True: pass"


def _timeit_empty(seconds: float) -> bench.Result:
    """timeit's own figure for an empty call, as samples of ns per call."""
    timer = timeit.Timer(lambda: None)
    loops, _ = timer.autorange()
    repeat = max(5, int(seconds / 0.2))
    per_loop = np.array(timer.repeat(repeat=repeat, number=loops)) / loops * 1e9
    return bench.Result(name="harness/timeit-empty-call", samples=per_loop, loops=loops)


@contextlib.contextmanager
def cpu_load(processes: int = 2) -> Iterator[None]:
    """Other processes spinning on every core while the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(processes)]
    try:
        time.sleep(0.2)  # let them get scheduled
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def _work(n: int) -> int:
    return sum(range(n))


def honesty(pairs: int, min_time: float) -> dict[str, int]:
    """How many A/A pairs are called faster or slower, how many true +10 % pairs slower."""
    n = 20_000
    aa = sum(
        bench.ab(lambda: _work(n), lambda: _work(n), name="aa", min_time=min_time).verdict
        in ("faster", "slower")
        for _ in range(pairs)
    )
    slower = sum(
        bench.ab(
            lambda: _work(n), lambda: _work(n * 11 // 10), name="a10", min_time=min_time
        ).verdict
        == "slower"
        for _ in range(pairs)
    )
    return {"pairs": pairs, "aa_judged_different": aa, "slower_10pct_judged_slower": slower}


@register(
    "harness",
    "self-checks: overhead vs timeit, stability under load, honesty, adapters",
    processes=1,  # its cross-run check spawns fresh processes of its own
)
def harness(quick: bool) -> SuiteRun:
    min_time = 0.2 if quick else 0.6
    data = list(range(1000))
    random.Random(0).shuffle(data)

    async def noop() -> None:
        return None

    async def sleep_1ms() -> None:
        await asyncio.sleep(0.001)

    t0 = time.perf_counter()
    empty = bench.run(lambda: None, name="harness/empty-call")  # default budget, timed below
    default_seconds = time.perf_counter() - t0
    timeit_empty = _timeit_empty(min_time)
    quiet = bench.run(lambda: sorted(data), name="harness/sorted-1000", min_time=min_time)
    with cpu_load():
        loaded = bench.run(
            lambda: sorted(data), name="harness/sorted-1000-under-load", min_time=min_time
        )
    results = [
        empty,
        timeit_empty,
        quiet,
        loaded,
        bench.run(noop, name="harness/async-noop", min_time=min_time),
        bench.run(
            lambda: time.sleep(0.001),
            name="harness/threads-sleep-1ms",
            concurrency=4,
            min_time=min_time,
        ),
        bench.run(sleep_1ms, name="harness/tasks-sleep-1ms", concurrency=16, min_time=min_time),
    ]
    checks = {
        "empty_call_ns": empty.median,
        "timeit_empty_call_ns": timeit_empty.median,
        "overhead_vs_timeit": empty.median / timeit_empty.median,
        "sorted_loaded_vs_quiet": loaded.median / quiet.median,
        "seconds_per_default_run": default_seconds,
        **honesty(6 if quick else 20, 0.2 if quick else 0.3),
        # full: runs of 8 processes, as `perflab bench` makes them; quick: 3, to stay short
        **selfcheck.cross_run(pairs=5 if quick else 20, per_run=3 if quick else 8),
    }
    return SuiteRun(suite="harness", results=results, checks=checks)
