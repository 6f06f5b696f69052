"""Comparing two results: the ratio of their figures with a confidence interval built from
replicates (processes, rounds, runs), and one of four verdicts.

Why replicates: samples within one process agree with each other far better than separate
processes or runs do, so a CI or rank test over pooled samples calls unchanged code different
(9 of 25 pairs of separate runs here, one "1.61x slower, p = 1e-67"). The interval here is
Welch's t on the logs of one figure per replicate (:func:`perflab.bench.stats.replicate_ratio`):
its floor (lower decile) for calibrated loops, its median for latency distributions.

The verdicts, for a threshold t (default 5 %):

* ``slower`` / ``faster`` — the interval excludes 1 and the ratio moved past t;
* ``same`` — the whole interval lies within [1/(1+t), 1+t]: any change is smaller than t;
* ``inconclusive`` — neither: the data cannot tell, and ``detectable`` says what it could see.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from perflab.bench import machine_speed, stats, verdict_notes
from perflab.bench.noise import busy_note
from perflab.bench.result import Result
from perflab.errors import BenchmarkError

if TYPE_CHECKING:  # pandas loads where a frame is built (~0.2 s a start-up saved)
    import pandas as pd

__all__ = ["VERDICTS", "Comparison", "compare", "verdict"]

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
THRESHOLD = 0.05
VERDICTS = ("faster", "slower", "same", "inconclusive")


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Comparison:
    """candidate vs baseline; ``ratio`` = median(candidate) / median(baseline), below 1 faster."""

    name: str
    baseline: Result
    candidate: Result
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    threshold: float
    alpha: float
    verdict: str  # faster | slower | same | inconclusive
    detectable: float = math.nan  # smallest relative change this data would see (80 % power)
    notes: tuple[str, ...] = ()
    units: tuple[int, int] | None = None  # replicates judged per side (None: all of them)
    # how far the ratio could move with how closely the benchmark follows the machine's change
    # of speed between two runs (relative; 0 when the speed held or its history knows)
    unexplained_speed: float = 0.0
    # the history's run-to-run noise (log sd) counted in the interval; 0 when none was
    run_noise_sd: float = 0.0

    @property
    def speedup_ci(self) -> tuple[float, float]:
        """The CI of :attr:`speedup` (the ratio's CI inverted; unbounded ends stay unbounded)."""

        def inverse(x: float) -> float:
            return math.inf if x == 0 else 0.0 if math.isinf(x) else 1.0 / x

        return inverse(self.ci_high), inverse(self.ci_low)

    @property
    def replicates(self) -> tuple[int, int]:
        """Replicates judged on each side (separate runs' rounds count as one run each)."""
        return self.units or (self.baseline.n_replicates, self.candidate.n_replicates)

    @property
    def explanation(self) -> str:
        """The verdict in a sentence, with what limited it."""
        ci = f"95 % CI {self.ci_low:.3f}-{self.ci_high:.3f}"
        if self.verdict == "inconclusive":
            text = f"inconclusive: {verdict_notes.limit(self)}"
        elif self.verdict == "same":
            text = f"same: any change is below {self.threshold:.0%} ({ci})"
        else:
            text = f"{self.verdict}: {_times(self.ratio)} ({ci})"
        return "; ".join([text, *self.notes])

    @property
    def speedup(self) -> float:
        """How many times faster the candidate is (baseline / candidate)."""
        return 1.0 / self.ratio if self.ratio else math.inf

    def summary(self) -> pd.Series:
        import pandas as pd

        return pd.Series(
            {
                "baseline_median": self.baseline.median,
                "candidate_median": self.candidate.median,
                "ratio": self.ratio,
                "ratio_ci_low": self.ci_low,
                "ratio_ci_high": self.ci_high,
                "speedup": self.speedup,
                "p_value": self.p_value,
                "detectable": self.detectable,
                "replicates": f"{self.replicates[0]} vs {self.replicates[1]}",
                "verdict": self.verdict,
            },
            name=self.name,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ratio": self.ratio,
            "ci": [self.ci_low, self.ci_high],
            "p_value": self.p_value,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "verdict": self.verdict,
            "detectable": self.detectable,
            "unexplained_speed": self.unexplained_speed,
            "run_noise_sd": self.run_noise_sd,
            "notes": list(self.notes),
            "baseline": self.baseline.to_dict(),
            "candidate": self.candidate.to_dict(),
        }


def _times(ratio: float) -> str:
    if ratio >= 1:
        return f"{ratio:.3g}x slower"
    return f"{1 / ratio:.3g}x faster" if ratio > 0 else "infinitely faster"


def verdict(ratio: float, ci_low: float, ci_high: float, *, threshold: float) -> str:
    """One of :data:`VERDICTS` from a ratio and its confidence interval."""
    up, down = 1.0 + threshold, 1.0 / (1.0 + threshold)
    if not (math.isfinite(ratio) and math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "inconclusive"
    if ci_low > 1.0 and ratio >= up:
        return "slower"
    if ci_high < 1.0 and ratio <= down:
        return "faster"
    if ci_low >= down and ci_high <= up:
        return "same"
    return "inconclusive"


def compare(
    baseline: Result,
    candidate: Result,
    *,
    threshold: float = THRESHOLD,
    confidence: float = CONFIDENCE,
    match_names: bool = True,
    run_noise: tuple[Any, ...] | None = None,
    adjust: bool = True,
) -> Comparison:
    """Is ``candidate`` faster, slower, the same as ``baseline``, or can the data not tell?

    The ratio is of the results' figures — the geometric mean over replicates of each
    replicate's floor (lower decile) for calibrated loops, of its median for per-operation
    latencies (:attr:`Result.statistic`) — and its interval comes from the spread between
    replicates on each side.

    ``run_noise`` = (sd, runs[, (slope, se)]): how much separate runs of this benchmark differ
    as a whole, in log units, learnt from ``runs`` runs of its history, and how its run figures
    follow the machine's speed (:meth:`History.run_noise`). Replicates
    inside a run cannot see a slow spell that covers the whole run; for two separate runs the
    interval then counts that spread too (one interleaved ``bench.ab`` call needs no such
    term: both sides shared every spell).

    ``adjust`` (default): when every replicate of both sides timed the machine's reference
    speed beside it (:mod:`perflab.bench.reference`; results of ``bench.run`` and ``perflab
    bench``), separate runs are judged by :func:`machine_speed.adjusted_ratio`, which takes
    out how much faster or slower the machine itself ran. The spells of a VM's speed that the
    reference follows are then explained rather than set aside as contended; ``run_noise``
    should then be how much runs differ beyond the machine's speed (:meth:`History.run_noise`
    learns it from speed-adjusted run figures when the history holds each run's speed)."""
    if not isinstance(baseline, Result) or not isinstance(candidate, Result):
        raise BenchmarkError("compare takes two bench.Result objects")
    if match_names and baseline.name != candidate.name:
        raise BenchmarkError(
            f"comparing different benchmarks: {baseline.name!r} vs {candidate.name!r} "
            "(pass match_names=False if that is intended)"
        )
    if baseline.unit != candidate.unit:
        raise BenchmarkError(
            f"comparing {baseline.name!r} in {baseline.unit} with {candidate.name!r} in "
            f"{candidate.unit}: units differ"
        )
    if not 0 <= threshold < 10 or not 0.5 <= confidence < 1:
        raise BenchmarkError(
            f"threshold must be in [0, 10) and confidence in [0.5, 1); got {threshold}, "
            f"{confidence}"
        )
    if _paired(baseline, candidate):
        return _paired_comparison(baseline, candidate, threshold, confidence)
    # both sides judged by one statistic: a floor only when both are calibrated loops
    base, cand = baseline, candidate
    if _separate_rounds(baseline, candidate):
        # rounds of two separate runs of one process: a whole run can sit in a slow spell
        # (here a process ran 1.7x slower for seconds), which rounds cannot see; each run is
        # one replicate, and one against one cannot be judged. Tried and dropped: with the
        # machine's speed beside them, the rounds of two bench.run calls of one process as
        # replicates (adjusted): a true +10 % read "same" in 2 of 20 pairs here, a confident
        # wrong answer, so the rounds still cannot stand for runs
        base, cand = _one_replicate(baseline), _one_replicate(candidate)
    elif not _interleaved(baseline, candidate):
        # one side's rounds against replicates of another kind (processes, runs, another
        # tool's summary): the rounds are one run, so that side is one replicate too. Their
        # spread, borrowed for the other side, called a single pytest-benchmark summary
        # "slower, CI 4.11-4.36x" against one session's rounds
        base = _one_replicate(base) if base.replicate_level == "round" else base
        cand = _one_replicate(cand) if cand.replicate_level == "round" else cand
    aside = (0, 0)
    adjusted = (
        adjust
        and base.statistic == cand.statistic == "floor"
        and base.reference.size > 0
        and cand.reference.size > 0
        and min(base.n_replicates, cand.n_replicates) >= 2
        and not _interleaved(baseline, candidate)
    )
    between = known = None
    if run_noise and not _interleaved(baseline, candidate):
        between = (float(run_noise[0]), int(run_noise[1]))
        known = run_noise[2] if len(run_noise) > 2 else None
    if adjusted:
        r = machine_speed.adjusted_ratio(
            base.replicate_figures,
            cand.replicate_figures,
            base.reference_figures,
            cand.reference_figures,
            confidence=confidence,
            between=between,
            known_slope=known,
        )
        adjusted = r.slope is not None
    if adjusted:
        pass  # the machine's speed explains the slow processes: none is set aside
    elif base.statistic == cand.statistic == "floor":
        (a, da), (b, db) = (
            stats.set_aside_contended(base.replicate_figures, stray=stats.STRAY),
            stats.set_aside_contended(cand.replicate_figures, stray=stats.STRAY),
        )
        aside = (da, db)
    else:
        a, b = base.replicate_medians, cand.replicate_medians
    if not adjusted:
        r = stats.replicate_ratio(a, b, confidence=confidence, between=between)
    notes = tuple(
        note
        for note in (
            busy_note("baseline", baseline.meta),
            busy_note("candidate", candidate.meta),
            verdict_notes.different_machines(baseline, candidate),
            verdict_notes.aside_note(aside, baseline.n_replicates, candidate.n_replicates),
            verdict_notes.between_note(between),
            verdict_notes.speed_note(r),
            verdict_notes.summary_note(baseline, candidate),
        )
        if note
    )
    return Comparison(
        name=candidate.name if match_names else f"{baseline.name} → {candidate.name}",
        baseline=baseline,
        candidate=candidate,
        ratio=r.ratio,
        ci_low=r.ci_low,
        ci_high=r.ci_high,
        p_value=r.p_value,
        threshold=threshold,
        alpha=1 - confidence,
        verdict=verdict(r.ratio, r.ci_low, r.ci_high, threshold=threshold),
        detectable=r.detectable,
        notes=notes,
        units=(base.n_replicates, cand.n_replicates),
        unexplained_speed=_unexplained(r),
        run_noise_sd=between[0] if between else 0.0,
    )


def _paired(a: Result, b: Result) -> bool:
    """Both sides are the two halves of interleaved pairs (``bench.ab``, ``perflab ab``)."""
    return (
        a.replicate_level == b.replicate_level == "pair"
        and _interleaved(a, b)
        and len(a.replicate_figures) == len(b.replicate_figures)
    )


def _paired_comparison(a: Result, b: Result, threshold: float, confidence: float) -> Comparison:
    """Paired replicates: the interval of the mean log-ratio of each pair's figures, at the
    level the sequential rule looked with (``meta["ab"]["level"]``, which keeps its error under
    repeated looks; :mod:`perflab.bench.sequential`), and that module's verdicts."""
    from perflab.bench import sequential

    how = (b.meta or {}).get("ab") or {}
    level, rounds = float(how.get("level", confidence)), int(how.get("rounds", 1))
    bounds = [np.cumsum(r.replicates or (r.samples.size,))[:-1] for r in (a, b)]
    d = np.array(
        [
            sequential.pair_log_ratio(x, y, rounds)
            for x, y in zip(
                np.split(a.samples, bounds[0]), np.split(b.samples, bounds[1]), strict=True
            )
        ]
    )
    ci = sequential.paired_interval(d, level)
    verdict_ = sequential.decide(ci.ci_low, ci.ci_high, threshold)
    notes = tuple(n for n in (busy_note("baseline", a.meta), busy_note("candidate", b.meta)) if n)
    if ci.pairs < sequential.MIN_PAIRS:
        verdict_ = "inconclusive"
        notes += (
            f"only {ci.pairs} interleaved pairs (the first look is at {sequential.MIN_PAIRS}); "
            "give it a longer budget",
        )
    z = (1.96 + 0.84) * ci.sd / math.sqrt(ci.pairs) if ci.pairs > 1 else math.nan
    return Comparison(
        name=b.name,
        baseline=a,
        candidate=b,
        ratio=ci.ratio,
        ci_low=ci.ci_low,
        ci_high=ci.ci_high,
        p_value=ci.p_value,
        threshold=threshold,
        alpha=1 - level,
        verdict=verdict_,
        detectable=math.expm1(z) if z == z else math.nan,
        notes=notes,
        units=(ci.pairs, ci.pairs),
    )


def _unexplained(r: stats.ReplicateRatio) -> float:
    """The relative width the slope's range spans at the machine's change of speed."""
    if r.slopes is None or r.speed is None:
        return 0.0
    return math.expm1((r.slopes[1] - r.slopes[0]) * abs(math.log(r.speed)))


def _interleaved(a: Result, b: Result) -> bool:
    """Both sides come from one interleaved run (``bench.ab``, the API table)."""
    together = (a.meta or {}).get("interleaved")
    return together is not None and together == (b.meta or {}).get("interleaved")


def _separate_rounds(a: Result, b: Result) -> bool:
    """Both sides' replicates are rounds, and not of one interleaved run (``bench.ab``)."""
    if a.replicate_level != "round" or b.replicate_level != "round":
        return False
    return not _interleaved(a, b)


def _one_replicate(r: Result) -> Result:
    return dataclasses.replace(r, replicates=(), replicate_level="run", rates=())
