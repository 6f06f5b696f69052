"""``bench.run`` and ``bench.ab``: the public shells around the timing core."""

from __future__ import annotations

import inspect
import sys
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from perflab.bench import core, noise
from perflab.bench.comparison import Comparison, compare
from perflab.bench.reference import Reference
from perflab.bench.result import Result, environment
from perflab.errors import BenchmarkError

__all__ = ["ab", "run"]


def _budget(
    warmup: float | None, min_time: float | None, max_time: float | None, rounds: int | None
) -> core.Budget:
    defaults = core.Budget()
    min_time = defaults.min_time if min_time is None else min_time
    max_time = max(defaults.max_time, min_time) if max_time is None else max_time
    return core.Budget(
        warmup=defaults.warmup if warmup is None else warmup,
        min_time=min_time,
        max_time=max_time,
        rounds=defaults.rounds if rounds is None else rounds,
    )


def _guarded(name: str, measure: core.Measure) -> core.Measure:
    """Report a target that raises as a BenchmarkError naming the benchmark."""

    def wrapped(loops: int) -> int:
        try:
            return measure(loops)
        except BenchmarkError:
            raise
        except Exception as err:  # any error of the target: named, re-raised
            raise BenchmarkError(
                f"benchmark {name!r}: the target raised {type(err).__name__}: {err}"
            ) from err

    return wrapped


QUIET = False  # set by `perflab bench --quiet`: no progress bars at all


def _progress(name: str, enabled: bool | None):
    """A tqdm bar, shown only once a run has lasted 2 s; silent when not a terminal or quiet."""
    if enabled is False or (enabled is None and (QUIET or not sys.stderr.isatty())):
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(
        total=100, desc=name, leave=False, delay=2.0, bar_format="{desc}: {percentage:3.0f}%|{bar}|"
    )

    def update(fraction: float) -> None:
        bar.n = int(fraction * 100)
        bar.refresh()

    return update, bar.close


def run(
    fn: Callable[[], Any],
    *,
    name: str | None = None,
    setup: Callable[[], Any] | None = None,
    warmup: float | None = None,
    min_time: float | None = None,
    max_time: float | None = None,
    concurrency: int = 1,
    rate: float | None = None,
    per_operation: bool = False,
    gc: str = "disable",
    params: dict[str, Any] | None = None,
    progress: bool | None = None,
    max_samples: int = 100_000,
    rounds: int | None = None,
    clock: Callable[[], int] = core.default_clock,
    reference: bool | None = None,
) -> Result:
    """Time ``fn`` (a callable, or a coroutine function) and return its samples.

    ``concurrency=1``: calibrated loops, each sample the mean ns per call of one short round.
    ``concurrency=N``: N threads (sync ``fn``) or N asyncio tasks (coroutine function) calling it
    back to back for ``min_time``; samples are per-operation latencies, plus throughput.
    ``rate=R``: open loop — calls start on a fixed schedule of R per second (spread over
    ``concurrency`` workers) and each latency counts from its scheduled start (no coordinated
    omission). ``per_operation=True`` times every call even with one worker (load tests).
    Per-operation runs keep every latency in an HDR histogram and at most
    ``max_samples`` of them as samples. Works inside a running Jupyter kernel.

    The samples fall into ``rounds`` (default 10) rounds of consecutive samples — per-operation
    runs drive the load in that many separate rounds — which are the replicates that
    :func:`compare` judges by. The machine's noise signs go into ``meta["noise"]``.

    ``reference`` (calibrated loops only; default: on with the real clock): after every
    sample, a short sample of a fixed reference loop, so each round also records the
    machine's speed in that spell (:mod:`perflab.bench.reference`); comparisons of separate
    runs adjust for it. It costs about 5 % of the sampling time.
    """
    if not callable(fn):
        raise BenchmarkError(f"benchmark {name!r}: {fn!r} is not callable")
    name = name or getattr(fn, "__qualname__", None) or repr(fn)
    if not isinstance(concurrency, int) or concurrency < 1:
        raise BenchmarkError(f"benchmark {name!r}: concurrency must be an integer >= 1")
    budget = _budget(warmup, min_time, max_time, rounds)
    is_async = inspect.iscoroutinefunction(fn)
    if setup is not None:
        setup()
    meta = environment()
    base = {"params": dict(params or {}), "meta": meta, "concurrency": concurrency}

    if rate is not None and not rate > 0:
        raise BenchmarkError(f"benchmark {name!r}: rate must be a positive number of calls/s")
    if concurrency > 1 or rate is not None or per_operation:
        mode = ("open-loop " if rate else "") + ("tasks" if is_async else "threads")
        base["params"].update({"rate": rate} if rate else {})

        def drive(seconds: float) -> tuple[np.ndarray, int, int]:
            if rate is None:
                return core.hammer(fn, concurrency, seconds, clock)
            return core.open_loop(fn, rate, concurrency, seconds, clock)

        parts: list[np.ndarray] = []
        rates: list[float] = []
        ops = wall = 0
        try:
            if budget.warmup:
                drive(budget.warmup)
            with core.gc_policy(gc), noise.probe() as signs:
                if rate is not None:
                    # one continuous schedule, cut into rounds afterwards (in schedule order)
                    lat, ops, wall = drive(budget.min_time)
                    sizes = core.round_sizes(lat.size, budget.rounds) if lat.size else ()
                    parts = list(np.split(lat, np.cumsum(sizes)[:-1])) if sizes else []
                else:
                    for _ in range(budget.rounds):
                        lat, n, ns = drive(budget.min_time / budget.rounds)
                        if n:
                            parts.append(lat)
                            rates.append(n / (ns / 1e9))
                        ops, wall = ops + n, wall + ns
        except Exception as err:  # any error of the target: named, re-raised
            raise BenchmarkError(
                f"benchmark {name!r}: the target raised {type(err).__name__}: {err}"
            ) from err
        if ops == 0:
            raise BenchmarkError(f"benchmark {name!r}: no call finished within {budget.min_time} s")
        meta["noise"] = signs
        cap = max(1, max_samples // len(parts))
        kept = [core.reservoir(p, cap, seed=i) for i, p in enumerate(parts)]
        return Result(
            name=name,
            samples=np.concatenate(kept),
            replicates=tuple(k.size for k in kept),
            replicate_level="round",
            rates=tuple(rates),
            loops=1,
            mode=mode,
            throughput=ops / (wall / 1e9),
            histogram=core.histogram(np.concatenate(parts)),
            **base,
        )

    adapter = core.async_measure if is_async else core.sync_measure
    measure = _guarded(name, adapter(fn, clock))
    target_ns = int(budget.sample_time * 1e9)
    update, close = _progress(name, progress)
    if reference is None:
        reference = clock is core.default_clock
    try:
        with core.gc_policy(gc):
            loops = core.calibrate(measure, target_ns=target_ns)
            core.warm(measure, loops, budget.warmup, clock)
            speed = Reference(clock) if reference else None
            with noise.probe() as signs:
                raw = core.collect(
                    measure,
                    loops,
                    budget=budget,
                    clock=clock,
                    progress=update,
                    beside=speed.sample if speed else None,
                )
    finally:
        close()
    meta["noise"] = signs
    sizes = core.round_sizes(raw.size, budget.rounds)
    return Result(
        name=name,
        samples=raw / loops,
        replicates=sizes,
        reference=np.asarray(speed.ns) if speed else (),
        replicate_level="round",
        loops=loops,
        mode="async" if is_async else "sync",
        **base,
    )


def ab(
    baseline: Callable[[], Any],
    candidate: Callable[[], Any],
    *,
    name: str = "ab",
    rounds: int = 20,
    min_time: float = 1.0,
    threshold: float | None = None,
    clock: Callable[[], int] = core.default_clock,
) -> Comparison:
    """Baseline and candidate interleaved in one run (A B B A …), so drift and background load
    fall on both alike. Each arm is calibrated on its own (a sample lasts ≥ 1 ms either way);
    ``min_time`` is the total sampling time for both."""
    if rounds < 2:
        raise BenchmarkError(f"ab {name!r}: rounds must be >= 2")
    measures = []
    for label, fn in (("baseline", baseline), ("candidate", candidate)):
        if not callable(fn):
            raise BenchmarkError(f"ab {name!r}: {label} {fn!r} is not callable")
        adapter = core.async_measure if inspect.iscoroutinefunction(fn) else core.sync_measure
        measures.append(_guarded(f"{name} ({label})", adapter(fn, clock)))
    loops = [core.calibrate(m, target_ns=int(1e6)) for m in measures]
    samples: list[list[float]] = [[], []]
    with core.gc_policy("disable"), noise.probe() as signs:
        # warm-up, and the cost of one sample of each arm, to spread the budget over the rounds
        cost = [max(m(n) for _ in range(3)) for m, n in zip(measures, loops, strict=True)]
        per_round = max(1, int(min_time * 1e9 / (rounds * sum(cost))))
        for r in range(rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for i in order:
                samples[i].extend(measures[i](loops[i]) / loops[i] for _ in range(per_round))
    # both arms' rounds were interleaved: compare may treat them as paired replicates
    meta = {**environment(), "noise": signs, "interleaved": uuid.uuid4().hex}
    a, b = (
        Result(
            name=name,
            samples=np.asarray(s),
            replicates=(per_round,) * rounds,  # one replicate per interleaved round
            replicate_level="round",
            loops=n,
            params={"arm": arm},
            meta=meta,
        )
        for s, n, arm in zip(samples, loops, ("baseline", "candidate"), strict=True)
    )
    kwargs = {} if threshold is None else {"threshold": threshold}
    return compare(a, b, **kwargs)
