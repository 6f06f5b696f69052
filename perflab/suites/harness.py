"""The harness checking itself, in one run:

* overhead: an empty call through ``bench.run`` beside timeit's figure for the same call;
* stability: the median of ``sorted()`` quiet, and again while two busy processes load the cores;
* honesty: ``bench.ab`` at its default budget — how often identical code is judged faster or
  slower, and the smallest true slowdown it calls slower 19 times in 20 — and across
  separate runs of fresh worker processes (:func:`perflab.bench.selfcheck.cross_run`) — this
  machine's own false-positive rate, so a user sees whether it is fit to judge;
* time: the wall-clock cost of one default ``bench.run``;
* plus async and concurrent targets, so every adapter is exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
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


def _payload(rows: int) -> str:
    """JSON of ``rows`` records: decoding it is real work whose cost grows with ``rows``."""
    return json.dumps([{"id": i, "name": f"item-{i}", "price": i * 1.25} for i in range(rows)])


LADDER = (0.02, 0.05, 0.10, 0.20)  # true slowdowns tried, smallest first


def honesty(reps: int, ladder: tuple[float, ...] = LADDER) -> dict[str, object]:
    """``bench.ab`` at its default budget on this machine: how often identical code is called
    faster or slower (and how often "same"), and the smallest true slowdown of ``ladder`` it
    calls slower in at least 19 of 20 comparisons (None when none of them)."""
    rows = 2_000
    base = _payload(rows)
    verdicts = [
        bench.ab(lambda: json.loads(base), lambda: json.loads(base), name="aa").verdict
        for _ in range(reps)
    ]
    seen: dict[str, int] = {}
    smallest = None
    for change in ladder:
        more = _payload(round(rows * (1 + change)))
        slower = sum(
            bench.ab(lambda: json.loads(base), lambda m=more: json.loads(m), name="ab").verdict
            == "slower"
            for _ in range(reps)
        )
        seen[f"ab_slower_at_{change:.0%}"] = slower
        if smallest is None and slower >= math.ceil(0.95 * reps):
            smallest = change
    return {
        "ab_pairs": reps,
        "ab_aa_judged_different": sum(v in ("faster", "slower") for v in verdicts),
        "ab_aa_judged_same": verdicts.count("same"),
        **seen,
        "ab_smallest_change_seen_19_in_20": smallest,
    }


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
        **honesty(6 if quick else 20, (0.05, 0.20) if quick else LADDER),
        # full: runs of 8 processes, as `perflab bench` makes them; quick: 3, to stay short
        **selfcheck.cross_run(pairs=5 if quick else 20, per_run=3 if quick else 8),
    }
    return SuiteRun(suite="harness", results=results, checks=checks)
