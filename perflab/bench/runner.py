"""``bench.run`` and ``bench.ab``: the public shells around the timing core."""

from __future__ import annotations

import inspect
import math
import os
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from perflab.bench import core, noise
from perflab.bench.comparison import compare
from perflab.bench.reference import Reference
from perflab.bench.result import Result, environment
from perflab.errors import BenchmarkError
from perflab.progress import note, watched

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
        except SystemExit as err:  # not an exit of perflab: a silent "success" once (exit 0)
            raise BenchmarkError(
                f"benchmark {name!r}: the target called sys.exit({err.code!r}); a benchmark "
                "must return, not exit"
            ) from err
        except Exception as err:  # any error of the target: named, re-raised
            raise BenchmarkError(
                f"benchmark {name!r}: the target raised {type(err).__name__}: {err}"
            ) from err

    return wrapped


QUIET = False  # set by `perflab bench --quiet`: no progress bars at all


def _progress(
    name: str, enabled: bool | None
) -> tuple[Callable[[float], None] | None, Callable[[], None]]:
    """A tqdm bar (tqdm.auto: a widget in JupyterLab, text in a terminal), shown only once a run
    has lasted 2 s; silent when nobody watches (CI, cron, headless notebooks) or quiet."""
    if enabled is False or (enabled is None and (QUIET or not watched())):
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
    note(name)
    is_async = inspect.iscoroutinefunction(fn)
    if setup is not None:
        setup()
    meta = environment()
    base: dict[str, Any] = {
        "params": dict(params or {}),
        "meta": meta,
        "concurrency": concurrency,
    }

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
        reference=np.asarray(speed.ns if speed else (), dtype=float),
        replicate_level="round",
        loops=loops,
        mode="async" if is_async else "sync",
        **base,
    )


BUDGET = 10.0  # bench.ab's default budget, seconds (most comparisons answer in 1-3 s)
PAIR_NS = 30_000_000  # one interleaved pair lasts about this long (both arms)
SAMPLE_NS = 1_000_000  # one sample of either arm lasts about this long
SPLIT = 8.0  # arms this many times apart get loop counts of their own (_even_loops)


def ab(
    baseline: Callable[[], Any] | str | os.PathLike[str],
    candidate: Callable[[], Any] | str | os.PathLike[str],
    *,
    target: str | None = None,
    name: str = "ab",
    threshold: float | None = None,
    budget: float | None = None,
    confidence: float = 0.95,
    min_time: float | None = None,
    rounds: int | None = None,
    duet: bool = False,
    clock: Callable[[], int] = core.default_clock,
    seed: int | None = None,
    on_pair: Callable[[int, float], None] | None = None,
    timeout: float | None = None,
) -> Any:
    """Baseline and candidate interleaved (A B, B A, … in random order), pair after pair, until
    the verdict at ``threshold`` (default 5 %) is known — faster, slower or same — or
    ``budget`` seconds are spent (default 10; ``min_time`` is the older name of the budget).
    Each pair is one paired replicate: whatever slowed both arms alike cancels in its ratio.
    The interval stays valid however many times it is looked at
    (:mod:`perflab.bench.sequential`): an A/A comparison is called different at most
    ``1 - confidence`` of the time. ``rounds``: at least this many pairs.

    Two functions: timed in this process, each arm calibrated on its own (a sample lasts ≥ 1
    ms either way); returns a :class:`Comparison`.

    Two source trees (git revisions of the repository here, or folders) and ``target`` (a
    ``.py`` file of ``bench_*`` functions inside them, or a built-in suite): each pair is two
    fresh worker processes, one per tree (``duet``: both at once, one per core); returns an
    :class:`~perflab.bench.interleave.ABRun` with a comparison per benchmark — what ``perflab
    ab`` prints."""
    if budget is None:
        budget = min_time
    if isinstance(baseline, str | os.PathLike) or isinstance(candidate, str | os.PathLike):
        from perflab.bench.interleave import ab_sources

        if not (
            isinstance(baseline, str | os.PathLike) and isinstance(candidate, str | os.PathLike)
        ):
            raise BenchmarkError(
                "ab takes two functions or two source trees (revisions or folders), not one of each"
            )
        if target is None:
            raise BenchmarkError("ab of two source trees needs target= (a .py file or a suite)")
        return ab_sources(
            os.fspath(baseline),
            os.fspath(candidate),
            target,
            threshold=0.05 if threshold is None else threshold,
            budget=budget,
            duet=duet,
            confidence=confidence,
            seed=seed,
            on_pair=on_pair,
            timeout=timeout,
        )
    from perflab.bench import sequential

    note(f"{name} (interleaved)")
    budget = BUDGET if budget is None else float(budget)
    if not budget > 0:
        raise BenchmarkError(f"ab {name!r}: budget must be a positive number of seconds")
    if rounds is not None and rounds < 2:
        raise BenchmarkError(f"ab {name!r}: rounds must be >= 2")
    threshold = sequential.THRESHOLD if threshold is None else threshold
    measures = []
    for label, fn in (("baseline", baseline), ("candidate", candidate)):
        if not callable(fn):
            raise BenchmarkError(f"ab {name!r}: {label} {fn!r} is not callable")
        adapter = core.async_measure if inspect.iscoroutinefunction(fn) else core.sync_measure
        measures.append(_guarded(f"{name} ({label})", adapter(fn, clock)))
    level = 1.0 - sequential.look_alpha(1.0 - confidence)
    stopper = sequential.Stopper(budget, at_least=rounds or 0)
    rng = np.random.default_rng(seed)
    start = clock()
    loops = [core.calibrate(m, target_ns=SAMPLE_NS) for m in measures]
    samples: list[list[float]] = [[], []]
    with core.gc_policy("disable"), noise.probe() as signs:
        # warm-up, and the cost of one sample of each arm. A pair is ROUNDS rounds, each a
        # block of each arm side by side in random order, and its log-ratio the median over
        # rounds of the blocks' floors (sequential.pair_log_ratio, as perflab ab's): a spell
        # of the machine that covers one arm's block moves one round, not the pair. Both arms
        # take blocks of one size: a floor of fewer samples sits higher, so unequal blocks
        # (one arm's warm-up caught a preemption) read as a difference, and so do samples
        # of unequal length (_even_loops). With one block per
        # arm and sizes apart, an A/A on an overloaded machine (three CPU hogs on two cores)
        # came out "faster" or "slower" in 4 of 6 runs, once 0.59x over 5 consistent pairs.
        loops = _even_loops(measures, loops, SAMPLE_NS)
        size = max(3, int(PAIR_NS / (sequential.ROUNDS * 2 * SAMPLE_NS)))
        ratios: list[float] = []

        def known() -> bool:
            ci = sequential.paired_interval(np.asarray(ratios), level)
            return sequential.decide(ci.ci_low, ci.ci_high, threshold) != "inconclusive"

        while True:
            pair: list[list[float]] = [[], []]
            for _ in range(sequential.ROUNDS):
                for i in rng.permutation(2):
                    pair[i] += [measures[i](loops[i]) / loops[i] for _ in range(size)]
            samples[0] += pair[0]
            samples[1] += pair[1]
            ratios.append(
                sequential.pair_log_ratio(
                    np.asarray(pair[0]), np.asarray(pair[1]), sequential.ROUNDS
                )
            )
            n, elapsed = len(ratios), (clock() - start) / 1e9
            if on_pair is not None:
                on_pair(n, elapsed)
            if stopper.after_pair(n, elapsed, known):
                break
    kept = stopper.decided or len(ratios)  # pairs after the last look are not judged
    # both arms' pairs were interleaved: compare treats them as paired replicates
    meta = {
        **environment(),
        "noise": signs,
        "interleaved": uuid.uuid4().hex,
        "ab": {"level": level, "mode": "in-process", "rounds": sequential.ROUNDS},
    }
    per_pair = sequential.ROUNDS * size
    a, b = (
        Result(
            name=name,
            samples=np.asarray(s[: kept * per_pair]),
            replicates=(per_pair,) * kept,  # one replicate per interleaved pair
            replicate_level="pair",
            loops=n,
            params={"arm": arm},
            meta=meta,
        )
        for s, n, arm in zip(samples, loops, ("baseline", "candidate"), strict=True)
    )
    return compare(a, b, threshold=threshold)


def _even_loops(measures: list[Any], loops: list[int], target_ns: int) -> list[int]:
    """Loops per sample for the two arms, from the per-call floor of a few samples of each
    taken in turn (also the warm-up): one count for both, whose slower arm's sample lasts
    about ``target_ns``, unless the arms differ more than :data:`SPLIT` times (then each its
    own, so the faster arm's samples stay long beside the clock's overhead).

    Why one count: samples of unequal length are judged unequally on a busy machine (a short
    one more often slips between slow spells, so its floor reads faster), and
    ``core.calibrate`` stops at the first count whose sample lasts ``target_ns``, so a
    preemption during one arm's calibration left identical code with samples 2x apart. With
    one count, the arms' samples differ in length only by the change itself."""
    floor = [math.inf, math.inf]
    for _ in range(3):
        for i, (m, n) in enumerate(zip(measures, loops, strict=True)):
            floor[i] = min(floor[i], m(n) / n)
    if not all(0 < f < math.inf for f in floor):
        return loops
    if max(floor) > SPLIT * min(floor):
        return [max(1, math.ceil(target_ns / f)) for f in floor]
    count = max(1, math.ceil(target_ns / max(floor)))
    return [count, count]
