"""What a comparison says beside its verdict: why an inconclusive one could not tell (and what
would), and the notes about the runs (a busy machine, other machines, replicates set aside,
the history's run noise, the machine's own change of speed, another tool's summary-only file).
Functions of results and of a comparison's fields; :mod:`perflab.bench.comparison` uses them."""

from __future__ import annotations

import math
from typing import Any

from perflab.bench import stats
from perflab.bench.result import Result

__all__ = [
    "aside_note",
    "between_note",
    "different_machines",
    "limit",
    "speed_note",
    "summary_note",
]


def limit(c: Any) -> str:
    """Why an inconclusive comparison ``c`` could not tell, and what would."""
    if c.baseline.replicate_level == "pair":  # interleaved pairs: only the budget stopped it
        return (
            f"the budget ended after {c.replicates[0]} interleaved pairs, the change "
            f"({c.ratio - 1:+.1%}, CI {c.ci_low:.3f}-{c.ci_high:.3f}) still too close to the "
            f"{c.threshold * 100:g} % threshold to tell; a longer budget would (bench.ab(..., "
            "budget=SECONDS), perflab ab --budget)"
        )
    if c.replicates == (1, 1) and not math.isfinite(c.detectable):
        return (
            "each side is a single run, so there is no spread between runs to judge by "
            "(rounds of separate runs in one process cannot see it); interleave the two "
            "(bench.ab), or time them in worker processes (perflab bench FILE.py, "
            "--processes) and compare those"
        )
    if not math.isfinite(c.detectable):
        return "the replicates do not vary enough to estimate the noise"
    if c.unexplained_speed > c.threshold / 2:
        # more replicates would not help: the runs differ in the machine's speed
        return (
            f"cannot see changes below {c.detectable:.0%} here, {c.unexplained_speed:.0%} of "
            "it from the machine's own change of speed between the runs; save runs to a "
            "history (perflab bench --save) so it learns how this benchmark follows the "
            "machine, or run both sides again"
        )
    if _runs_limit(c) > c.threshold:
        # more replicates would not help: whole runs of this benchmark differ this much
        return (
            f"cannot see changes below {c.detectable:.0%} here: separate runs of this "
            f"benchmark differ by about {math.expm1(c.run_noise_sd):.1%} as a whole, so no "
            f"number of replicates in one run sees less than {_runs_limit(c):.0%}; interleave "
            "the two (bench.ab), or judge over several runs of each (its history)"
        )
    need = _replicates_needed(c)
    more = f"; about {need} replicates per side would see {c.threshold:.0%}" if need else ""
    return f"cannot see changes below {c.detectable:.0%} here{more}"


def _runs_limit(c: Any) -> float:
    """The smallest change two separate runs could show with endless replicates: the run noise
    of both sides alone (95 % two-sided and 80 % power, normal quantiles)."""
    return math.expm1((1.96 + 0.84) * math.sqrt(2.0) * c.run_noise_sd)


def _replicates_needed(c: Any) -> int | None:
    """Replicates per side that would bring the detectable change down to the threshold (the
    standard error shrinks as 1/sqrt(k))."""
    if not (c.detectable > c.threshold > 0):
        return None
    k = min(c.replicates)
    scale = math.log1p(c.detectable) / math.log1p(c.threshold)
    return math.ceil(max(k, 2) * scale**2)  # type: ignore[no-any-return]  # (an int)


def summary_note(a: Result, b: Result) -> str | None:
    """Another tool's file without samples (pytest-benchmark without --benchmark-save-data, asv
    without --record-samples) is one figure per run: said, never judged as if it had more."""
    said = [f"{side}: {r.meta['summary_only']}" for side, r in (("baseline", a), ("candidate", b))
            if r.meta.get("summary_only")]  # fmt: skip
    if not said:
        return None
    if min(a.n_replicates, b.n_replicates) < 2:
        said.append("one figure per side cannot be judged; compare folders of several runs")
    return "; ".join(said)


def between_note(between: tuple[float, int] | None) -> str | None:
    if not between:
        return None
    sd, runs = between
    return (
        f"separate runs of this benchmark differ by about {math.expm1(sd):.1%} as a whole "
        f"(its history, {runs} runs); the interval counts that too"
    )


def speed_note(r: stats.ReplicateRatio) -> str | None:
    """What the adjustment for the machine's speed did, when it moved anything worth saying."""
    if r.slope is None or r.speed is None:
        return None
    moved = abs(math.log(r.speed))
    if moved < math.log(1.02):
        return None
    which = "slower" if r.speed > 1 else "faster"
    machine = (
        f"the machine itself ran {max(r.speed, 1 / r.speed):.2f}x {which} in the candidate's "
        f"run (perflab's reference loop, timed beside every replicate)"
    )
    if r.slopes is None:
        return (
            f"{machine}; its history says this benchmark follows it with slope {r.slope:.2f}, "
            f"and the ratio shown is adjusted for it"
        )
    low, high = r.slopes
    return (
        f"{machine}; how closely this benchmark follows it two runs cannot tell (slope "
        f"{low:.2f} to {high:.2f}), so the interval covers the ratio at every slope between; "
        f"a history of its runs learns the slope"
    )


def aside_note(aside: tuple[int, int], na: int, nb: int) -> str | None:
    if not any(aside):
        return None
    return (
        f"set aside as contended (over {stats.CONTENDED:g}x the lower quartile"
        + (f" or {stats.STRAY:g}x the median" if stats.STRAY else "")
        + "): "
        f"{aside[0]} of {na} baseline and {aside[1]} of {nb} candidate replicates"
    )


def different_machines(a: Result, b: Result) -> str | None:
    keys = ("cpu", "cpus", "python", "implementation")
    ma, mb = a.meta or {}, b.meta or {}
    differ = [k for k in keys if k in ma and k in mb and ma[k] != mb[k]]
    if not differ:
        return None
    pairs = ", ".join(f"{k} {ma[k]} vs {mb[k]}" for k in differ)
    return f"the two sides ran on different machines or interpreters ({pairs})"
