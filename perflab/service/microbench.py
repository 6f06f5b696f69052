"""``POST /benchmark/{suite}``: named micro-suites run inside the service, on its own event
loop and through its own clients (the cache's Redis tier, the optimised variant's database
reader), within a bounded budget. Each operation is timed one by one; the samples fall into
rounds (the replicates), and the answer is the harness's JSON (``bench.Result.to_dict``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from perflab import bench
from perflab.bench.core import round_sizes

__all__ = ["MAX_SECONDS", "SUITES", "TOKEN_ENV", "TOKEN_HEADER", "time_async"]

TOKEN_ENV = "PERFLAB_SERVICE_BENCH_TOKEN"
TOKEN_HEADER = "X-Perflab-Token"
MAX_SECONDS = 5.0  # the whole suite's budget, at most
ROUNDS = 5
MAX_OPS = 200_000


async def time_async(
    name: str, op: Callable[[], Awaitable[Any]], seconds: float, params: dict[str, Any]
) -> bench.Result:
    """Call ``op`` back to back for ``seconds`` (at most MAX_OPS times), each call timed."""
    clock = time.perf_counter_ns
    await op()  # warm: connections open, statements prepared
    out: list[int] = []
    end = clock() + int(seconds * 1e9)
    while (t0 := clock()) < end and len(out) < MAX_OPS:
        await op()
        out.append(clock() - t0)
    samples = np.asarray(out, dtype=float)
    return bench.Result(
        name=name,
        samples=samples,
        replicates=round_sizes(samples.size, min(ROUNDS, samples.size)),
        replicate_level="round",
        mode="async",
        params=params,
        meta=await asyncio.to_thread(bench.environment),  # runs git: not on the loop
    )


async def _cache(backend: Any, seconds: float) -> list[bench.Result]:
    """L1 hit (``aget``), L2 round trip (the Redis tier's ``aget``), and the set of both."""
    key = "bench:cache:probe"
    value = {"payload": "x" * 100}
    await backend.cache.aset(key, value)
    share = seconds / 3
    where = {"suite": "cache", "tier": "redis"}
    return [
        await time_async("service/cache/l1_get", lambda: backend.cache.aget(key), share,
                         {"suite": "cache", "tier": "memory"}),
        await time_async("service/cache/l2_get", lambda: backend.redis.aget(key), share,
                         where),
        await time_async("service/cache/set", lambda: backend.cache.aset(key, value), share,
                         {"suite": "cache", "tier": "memory+redis"}),
    ]  # fmt: skip


async def _db(backend: Any, seconds: float) -> list[bench.Result]:
    """A trivial query and one symbol's bars, through the optimised variant's reader."""
    symbol = min(backend.symbols)
    lo, hi = backend.span
    mode = {"suite": "db", "reader": backend.reader.mode}
    return [
        await time_async("service/db/select_1", lambda: backend.reader.fetch("SELECT 1", {}),
                         seconds / 2, mode),
        await time_async("service/db/bars", lambda: backend.optimized_rows(symbol, lo, hi),
                         seconds / 2, mode),
    ]  # fmt: skip


SUITES: dict[str, Callable[[Any, float], Awaitable[list[bench.Result]]]] = {
    "cache": _cache,
    "db": _db,
}
