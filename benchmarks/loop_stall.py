"""How long the event loop stalls while many tasks use the async cache API and Redis is slowed
(``DEBUG SLEEP``) and then hung (SIGSTOP) — issue 24's target: the longest stall ≤ 5 ms.

Starts a Redis of its own (embedded, from pip), so SIGSTOP touches nothing else. A ticker task
sleeps 1 ms at a time and records how late each wake-up is; the figures are its gaps.

    .venv/bin/python benchmarks/loop_stall.py [--seconds 6] [--tasks 20] [--write back]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import signal
import statistics
import tempfile
import time
from pathlib import Path

from perflab import servers
from perflab.cache import MemoryTier, RedisTier, TieredCache
from perflab.settings import resolve


async def ticker(stop: asyncio.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def worker(cache: TieredCache, stop: asyncio.Event, n: int, done: list[int]) -> None:
    rng = random.Random(n)
    while not stop.is_set():
        key = f"k{rng.randrange(200)}"
        op = rng.random()
        if op < 0.4:
            await cache.aset(key, {"n": n, "at": time.time()})
        elif op < 0.6:
            await cache.adelete(key)
        elif op < 0.7:
            await cache.aset_many({f"m{n}:{i}": i for i in range(5)})
        elif op < 0.75:
            await cache.ainvalidate(f"m{n}:*")
        elif op < 0.8:
            await cache.ainvalidate_tags(f"t{n}")
        else:
            await cache.aget(key)
        done[0] += 1
        # a service's tasks wait for their next request: the loop's own capacity is not the
        # question here, only whether the cache blocks it
        await asyncio.sleep(rng.uniform(0.002, 0.01))


async def chaos(url: str, pid: int, seconds: float, healthy: bool) -> None:
    """Slow for the first half (DEBUG SLEEP 0.3 every 0.6 s), hung for the second (SIGSTOP);
    with ``healthy``, neither (the stalls the workload and the machine cause by themselves)."""
    import redis.asyncio as aredis

    if healthy:
        await asyncio.sleep(seconds)
        return
    admin = aredis.Redis.from_url(url)
    half = seconds / 2
    t0 = time.monotonic()
    while time.monotonic() - t0 < half:
        # the sleep runs in Redis; our await does not block the loop
        with contextlib.suppress(Exception):
            await admin.execute_command("DEBUG", "SLEEP", "0.3")
        await asyncio.sleep(0.3)
    await admin.aclose()
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds - half)
    finally:
        os.kill(pid, signal.SIGCONT)


async def main(args: argparse.Namespace, url: str, pid: int) -> dict:
    cache = TieredCache(
        [MemoryTier(10_000), RedisTier(url, prefix="stall:", timeout=0.5)],
        default_ttl=60,
        write=args.write,
        coherence=not args.no_coherence,
    )
    await cache.aset("warm", 1)  # connections made before the chaos starts
    stop, gaps, done = asyncio.Event(), [], [0]
    pauses: list[float] = []
    started = [0.0]

    def gc_timer(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif info["generation"] == 2:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(gc_timer)
    tasks = [asyncio.create_task(ticker(stop, gaps))]
    tasks += [asyncio.create_task(worker(cache, stop, n, done)) for n in range(args.tasks)]
    # a second of warm-up first: the connection pool grows to one connection per task and
    # first calls import and compile; those stalls (up to ~30 ms here) are not the question
    await asyncio.sleep(1.0)
    del gaps[:]
    await chaos(url, pid, args.seconds, args.healthy)
    stop.set()
    await asyncio.gather(*tasks)
    await cache.aclose()
    lates = sorted(g - 0.001 for g in gaps)
    if pauses:
        print(f"longest GC pause {1000 * max(pauses):.1f} ms of {len(pauses)} collections")
    return {
        "operations": done[0],
        "ticks": len(gaps),
        "longest_stall_ms": round(1000 * lates[-1], 2),
        "p99_stall_ms": round(1000 * lates[int(0.99 * (len(lates) - 1))], 2),
        "median_stall_ms": round(1000 * statistics.median(lates), 3),
        "stalls_over_5ms": sum(g > 0.005 for g in lates),
        "blocked_s": round(sum(g for g in lates if g > 0.005), 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--write", choices=["through", "back"], default="through")
    parser.add_argument("--no-coherence", action="store_true", help="no listener thread")
    parser.add_argument("--healthy", action="store_true", help="no slow or hung Redis")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        own = resolve({}, state_dir=Path(tmp) / "state")
        url = servers.start(own, database=False).redis_url
        pid = int((own.state_dir / "redis" / "redis.pid").read_text().strip())
        try:
            print(asyncio.run(main(args, url, pid)))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            servers.stop(own)
