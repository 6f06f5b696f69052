"""The service's tail counters on a real event loop: GC pauses, stalls by cause, loads."""

from __future__ import annotations

import asyncio
import gc
import time

from perflab.service.tail import TailWatch, stall_cause


def test_a_stall_is_put_down_to_what_took_most_of_it():
    assert stall_cause(50, ran_ms=31, waited_ms=20) == "held"  # code on the loop, some queueing
    assert stall_cause(50, ran_ms=2, waited_ms=45) == "preempted"  # waiting for a core
    assert stall_cause(50, ran_ms=1, waited_ms=0.5) == "blocked"  # a sleep or sync I/O


def test_tail_watch_counts_gc_pauses_stalls_by_cause_and_loads():
    async def load() -> int:
        await asyncio.sleep(0)
        return 1

    async def main() -> dict:
        watch = TailWatch()
        watch.start()
        try:
            await asyncio.sleep(0.02)
            gc.collect()  # a full collection: a generation-2 pause
            end = time.perf_counter() + 0.05
            while time.perf_counter() < end:  # code holding the loop: a held stall
                pass
            await asyncio.sleep(0.02)
            time.sleep(0.05)  # a blocking call on the loop: a blocked stall
            await asyncio.sleep(0.02)
            assert await watch.timed(load)() == 1
            return watch.snapshot()
        finally:
            watch.stop()

    snap = asyncio.run(main())
    assert snap["gc"]["2"]["n"] >= 1 and snap["gc"]["2"]["max_ms"] > 0
    stalls = snap["stalls"]  # the two 50 ms holds, each put down to one cause
    assert stalls["n"] >= 2 and stalls["max_ms"] >= 40
    assert stalls["n"] == stalls["held"]["n"] + stalls["blocked"]["n"] + stalls["preempted"]["n"]
    assert snap["loads"]["n"] == 1
