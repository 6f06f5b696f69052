"""Is this machine fit to judge? The harness's own cross-run false-positive rate, measured.

Separate runs are sets of fresh worker processes. Each worker times one CPU-bound function
``A`` and the same function doing 10 % more work ``B`` (interleaved rounds, the timing core's
calibration and warm-up) and prints their floors and the reference speed timed beside each.
Workers are grouped into "runs" of ``per_run`` processes; pairs of runs are then compared as
``perflab compare`` would: A against A (identical code: any faster/slower verdict is a false
positive) and A against B (a true 10 % slowdown: ``slower`` is right, ``faster`` is a
confident wrong answer).

Workers import only :mod:`perflab.bench.core` (and numpy), so one costs a few tenths of a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["cross_run"]

N = 20_000  # sum(range(N)): ~0.1-0.3 ms here, short enough for many samples per round


def _work(n: int) -> int:
    return sum(range(n))


def _worker(seconds: float, rounds: int) -> dict[str, float]:
    """In a fresh process: floors (lower deciles) of A and B over interleaved rounds, and of
    the machine's reference speed timed beside each (as ``bench.run`` records it)."""
    import numpy as np

    from perflab.bench import core
    from perflab.bench.reference import Reference

    clock = core.default_clock
    measures = {
        "a": core.sync_measure(lambda: _work(N), clock),
        "b": core.sync_measure(lambda: _work(N * 11 // 10), clock),
    }
    loops = {k: core.calibrate(m, target_ns=1_000_000) for k, m in measures.items()}
    budget = core.Budget(
        warmup=0.0, min_time=seconds / (2 * rounds), max_time=seconds / rounds, min_samples=5
    )
    per_call: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    speeds = {"a": Reference(clock), "b": Reference(clock)}
    with core.gc_policy("disable"):
        for k, m in measures.items():
            core.warm(m, loops[k], 0.02, clock)
        for r in range(rounds):
            for k in ("a", "b") if r % 2 == 0 else ("b", "a"):
                raw = core.collect(
                    measures[k], loops[k], budget=budget, clock=clock, beside=speeds[k].sample
                )
                per_call[k].append(raw / loops[k])
    out = {k: float(np.percentile(np.concatenate(v), 10)) for k, v in per_call.items()}
    out.update({f"{k}_ref": float(np.percentile(s.ns, 10)) for k, s in speeds.items()})
    return out


def cross_run(
    *,
    pairs: int = 10,
    per_run: int = 3,
    seconds: float = 0.2,
    rounds: int = 4,
    threshold: float = 0.05,
    on_done: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Spawn ``2 * pairs * per_run`` workers one after another; return the verdict counts."""
    from perflab.bench.comparison import compare
    from perflab.bench.result import Result

    total = 2 * pairs * per_run
    code = (
        "import json, sys; from perflab.bench.selfcheck import _worker; "
        f"print(json.dumps(_worker({seconds!r}, {rounds!r})))"
    )
    workers = []
    for i in range(total):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            from perflab.errors import BenchmarkError

            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise BenchmarkError(f"self-check worker {i + 1}/{total} failed: {tail}")
        workers.append(json.loads(done.stdout))
        if on_done is not None:
            on_done(i + 1, total)

    def run_of(group: list[dict[str, float]], key: str) -> Result:
        # one figure per process, and the reference speed beside it: compare adjusts for the
        # machine's speed as it does for `perflab bench` runs
        return Result(
            name="selfcheck",
            samples=np.array([w[key] for w in group], dtype=float),
            reference=np.array([w[f"{key}_ref"] for w in group], dtype=float),
            replicates=(1,) * len(group),
            replicate_level="process",
        )

    counts = {"aa_judged_different": 0, "slower_10pct_judged_slower": 0}
    counts["slower_10pct_judged_faster"] = 0
    detectable = []
    for p in range(pairs):
        x = workers[2 * p * per_run : (2 * p + 1) * per_run]
        y = workers[(2 * p + 1) * per_run : (2 * p + 2) * per_run]
        aa = compare(run_of(x, "a"), run_of(y, "a"), threshold=threshold)
        ab = compare(run_of(x, "a"), run_of(y, "b"), threshold=threshold)
        counts["aa_judged_different"] += aa.verdict in ("faster", "slower")
        counts["slower_10pct_judged_slower"] += ab.verdict == "slower"
        counts["slower_10pct_judged_faster"] += ab.verdict == "faster"
        detectable.append(aa.detectable)
    return {
        "cross_run_pairs": pairs,
        "cross_run_processes_per_run": per_run,
        **{f"cross_run_{k}": v for k, v in counts.items()},
        "cross_run_detectable_median": float(sorted(detectable)[len(detectable) // 2]),
    }
