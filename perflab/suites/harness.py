"""The harness checking itself: overhead beside timeit's in the same run, a stable CPU-bound
target, an async target and a concurrent one."""

from __future__ import annotations

import asyncio
import random
import time
import timeit

import numpy as np

from perflab import bench
from perflab.suites import register


def _timeit_empty(seconds: float) -> bench.Result:
    """timeit's own figure for an empty call, as samples of ns per call."""
    timer = timeit.Timer(lambda: None)
    loops, _ = timer.autorange()
    repeat = max(5, int(seconds / 0.2))
    per_loop = np.array(timer.repeat(repeat=repeat, number=loops)) / loops * 1e9
    return bench.Result(name="harness/timeit-empty-call", samples=per_loop, loops=loops)


@register("harness", "self-checks: overhead vs timeit, sorted(), async and threaded targets")
def harness(quick: bool) -> list[bench.Result]:
    min_time = 0.2 if quick else 0.6
    data = list(range(1000))
    random.Random(0).shuffle(data)

    async def noop() -> None:
        return None

    async def sleep_1ms() -> None:
        await asyncio.sleep(0.001)

    return [
        bench.run(lambda: None, name="harness/empty-call", min_time=min_time),
        _timeit_empty(min_time),
        bench.run(lambda: sorted(data), name="harness/sorted-1000", min_time=min_time),
        bench.run(noop, name="harness/async-noop", min_time=min_time),
        bench.run(
            lambda: time.sleep(0.001),
            name="harness/threads-sleep-1ms",
            concurrency=4,
            min_time=min_time,
        ),
        bench.run(sleep_1ms, name="harness/tasks-sleep-1ms", concurrency=16, min_time=min_time),
    ]
