"""The one timing core. Sync, async and concurrent targets differ only in the small adapter that
turns "run the target n times" into elapsed nanoseconds; warm-up, calibration and the sampling
loop exist once, as plain functions over a ``measure(loops) -> ns`` callable and a ``clock``, so
tests drive them with a fake clock.

Async targets run on a private event loop in a worker thread, never with ``asyncio.run()``: a
Jupyter kernel already runs a loop in the main thread, and this works beside it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import inspect
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from perflab.errors import BenchmarkError

__all__ = ["FAILED", "Budget", "calibrate", "collect"]

Clock = Callable[[], int]

# A per-operation target returns this for a call that failed (a refused connection, a timeout):
# a failure is not a latency, so it is counted by the target and left out of the samples and
# the throughput.
FAILED = object()
Measure = Callable[[int], int]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Budget:
    """How long to spend. Defaults keep one benchmark near 1 s (asv ~0.7 s, pyperf 13–21 s)."""

    warmup: float = 0.1  # seconds of untimed calls before sampling
    min_time: float = 0.6  # sample for at least this long ...
    max_time: float = 1.0  # ... and stop here whatever else
    sample_time: float = 0.001  # each sample lasts at least this long (many short rounds)
    min_samples: int = 20
    max_samples: int = 100_000
    # the samples fall into this many rounds of consecutive samples (the replicates a comparison
    # judges by), so a busy spell shows up as spread between rounds instead of hiding in a pool
    rounds: int = 10

    def __post_init__(self) -> None:
        for field in ("min_time", "max_time", "sample_time"):
            if not getattr(self, field) > 0:
                raise BenchmarkError(f"{field} must be positive, got {getattr(self, field)!r}")
        if self.warmup < 0:
            raise BenchmarkError(f"warmup must be >= 0 seconds, got {self.warmup!r}")
        if self.max_time < self.min_time:
            raise BenchmarkError(
                f"max_time ({self.max_time}) must be at least min_time ({self.min_time})"
            )
        if not 1 <= self.min_samples <= self.max_samples:
            raise BenchmarkError("need 1 <= min_samples <= max_samples")
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise BenchmarkError(f"rounds must be an integer >= 1, got {self.rounds!r}")


def round_sizes(n: int, rounds: int) -> tuple[int, ...]:
    """Sizes of ``rounds`` consecutive groups of ``n`` samples, as equal as they can be (fewer
    groups when there are fewer samples than rounds)."""
    k = max(1, min(rounds, n))
    return tuple(len(part) for part in np.array_split(np.arange(n), k))


def calibrate(measure: Measure, *, target_ns: int, max_loops: int = 1 << 32) -> int:
    """The number of loops whose sample lasts at least ``target_ns`` (so clock resolution and
    timer overhead are small beside it). Grows geometrically, jumping by the measured rate."""
    loops = 1
    while loops < max_loops:
        elapsed = measure(loops)
        if elapsed >= target_ns:
            return loops
        grow = 10 if elapsed <= 0 else min(10.0, max(2.0, 1.2 * target_ns / elapsed))
        loops = min(max_loops, int(loops * grow))
    return max_loops


def collect(
    measure: Measure,
    loops: int,
    *,
    budget: Budget,
    clock: Clock,
    progress: Any = None,
    beside: Callable[[], None] | None = None,
) -> np.ndarray:
    """Samples of ``measure(loops)`` in ns (whole samples, not per operation) until the budget
    says stop: at least ``min_samples`` and ``min_time``, at most ``max_time``. ``beside()``,
    when given, runs after every sample (the machine's reference speed, timed in the same
    spells as the target: :mod:`perflab.bench.reference`); its time counts in the budget."""
    start = clock()
    min_ns, max_ns = budget.min_time * 1e9, budget.max_time * 1e9
    samples: list[int] = []
    while len(samples) < budget.max_samples:
        samples.append(measure(loops))
        if beside is not None:
            beside()
        elapsed = clock() - start
        if progress is not None:
            progress(min(elapsed / min_ns, 1.0))
        if elapsed >= max_ns or (len(samples) >= budget.min_samples and elapsed >= min_ns):
            break
    return np.asarray(samples, dtype=np.int64)


def warm(measure: Measure, loops: int, seconds: float, clock: Clock) -> None:
    end = clock() + seconds * 1e9
    while clock() < end:
        measure(loops)


# ----------------------------------------------------------------------------------------------
# adapters: target -> measure(loops) -> ns


def sync_measure(fn: Callable[[], Any], clock: Clock) -> Measure:
    def measure(loops: int) -> int:
        # locals, as timeit's template: a closure variable costs a LOAD_DEREF per call
        target, now, it = fn, clock, itertools.repeat(None, loops)
        t0 = now()
        for _ in it:
            target()
        return now() - t0

    return measure


class _LoopThread:
    """A private event loop in a daemon thread, for timing coroutines from sync code."""

    _lock = threading.Lock()
    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="perflab-bench-loop", daemon=True
        )
        self.thread.start()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


def async_measure(fn: Callable[[], Awaitable[Any]], clock: Clock) -> Measure:
    runner = _LoopThread.get()

    async def timed(loops: int) -> int:
        t0 = clock()
        for _ in itertools.repeat(None, loops):
            await fn()
        return clock() - t0

    return lambda loops: runner.run(timed(loops))


Worker = Callable[[int, list[int]], Any]  # (start ns, latencies out) -> None, or a coroutine


def _drive(
    fn: Callable[..., Any], workers: int, clock: Clock, task: Worker, thread: Worker
) -> tuple[np.ndarray, int, int]:
    """Run ``workers`` copies of the loop body (``task`` for a coroutine function, on the private
    event loop; ``thread`` otherwise, in threads) from one start time; gather their latencies."""
    outs: list[list[int]] = [[] for _ in range(workers)]
    if inspect.iscoroutinefunction(fn):

        async def all_tasks() -> int:
            start = clock()
            await asyncio.gather(*(task(start, out) for out in outs))
            return clock() - start

        wall = _LoopThread.get().run(all_tasks())
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="perflab-bench") as pool:
            start = clock()
            list(pool.map(lambda out: thread(start, out), outs))
            wall = clock() - start
    latencies = np.fromiter(itertools.chain.from_iterable(outs), dtype=np.int64)
    return latencies, int(latencies.size), int(wall)


def hammer(
    fn: Callable[..., Any], workers: int, seconds: float, clock: Clock
) -> tuple[np.ndarray, int, int]:
    """``workers`` threads (sync fn) or tasks (async fn) calling ``fn`` back to back for
    ``seconds``. Returns (per-operation latencies in ns, operations, wall ns)."""
    deadline_ns = int(seconds * 1e9)

    async def task(start: int, out: list[int]) -> None:
        while clock() - start < deadline_ns:
            t0 = clock()
            if await fn() is not FAILED:
                out.append(clock() - t0)

    def thread(start: int, out: list[int]) -> None:
        while clock() - start < deadline_ns:
            t0 = clock()
            if fn() is not FAILED:
                out.append(clock() - t0)

    return _drive(fn, workers, clock, task, thread)


def open_loop(
    fn: Callable[..., Any],
    rate: float,
    workers: int,
    seconds: float,
    clock: Clock,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[np.ndarray, int, int]:
    """Calls started on a fixed schedule (``rate`` per second, shared by ``workers`` threads or
    tasks), whether or not earlier calls have finished, as wrk2 does. Each latency is measured
    from the call's *intended* start, so time spent queued behind a slow call counts: no
    coordinated omission. Returns (latencies ns in schedule order, operations, wall ns)."""
    interval = 1e9 / rate
    total = max(1, int(seconds * rate))
    counter = itertools.count()  # shared by all workers: each scheduled call is taken once
    # latencies in schedule order (-1: failed), so rounds can be cut from one continuous
    # schedule: restarting the schedule per round would forgive the calls queued at its end
    late = np.full(total, -1, dtype=np.int64)

    async def task(start: int, out: list[int]) -> None:
        while (i := next(counter)) < total:
            intended = start + int(i * interval)
            if (delay := intended - clock()) > 0:
                await asyncio.sleep(delay / 1e9)
            if await fn() is not FAILED:
                late[i] = clock() - intended

    def thread(start: int, out: list[int]) -> None:
        while (i := next(counter)) < total:
            intended = start + int(i * interval)
            if (delay := intended - clock()) > 0:
                sleep(delay / 1e9)
            if fn() is not FAILED:
                late[i] = clock() - intended

    _, _, wall = _drive(fn, workers, clock, task, thread)
    done = late[late >= 0]
    return done, int(done.size), wall


def histogram(latencies: np.ndarray) -> str:
    """The latencies (ns) in an HdrHistogram (3 significant digits), encoded as text."""
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram(1, 3_600 * 10**9, 3)
    for value in latencies:
        hist.record_value(max(1, int(value)))
    return str(hist.encode().decode("ascii"))


def reservoir(values: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """At most ``size`` of ``values``, drawn uniformly without replacement (order kept)."""
    if values.size <= size:
        return values
    picked = np.random.default_rng(seed).choice(values.size, size=size, replace=False)
    return values[np.sort(picked)]


class gc_policy:  # lower-case: reads like a function in a with statement
    """``"disable"`` (default, as timeit): no collection during timed samples; ``"enable"``:
    leave the collector as it is; ``"collect"``: collect once before sampling, then disable."""

    def __init__(self, policy: str) -> None:
        if policy not in ("disable", "enable", "collect"):
            raise BenchmarkError(f"gc must be 'disable', 'enable' or 'collect', got {policy!r}")
        self.policy = policy
        self.was_enabled = gc.isenabled()

    def __enter__(self) -> None:
        if self.policy == "collect":
            gc.collect()
        if self.policy != "enable":
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.was_enabled:
            gc.enable()


def default_clock() -> int:
    return time.perf_counter_ns()
