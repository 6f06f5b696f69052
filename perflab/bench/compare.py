"""Comparing two results: ratio of medians with a bootstrap CI, a Mann-Whitney U test, and a
minimum effect size. asv's rule (p < 0.002 and a change past the threshold), because pyperf's
t-test on means called identical code different in 6 of 9 repeat pairs on this kind of machine."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from perflab.bench import stats
from perflab.bench.result import Result
from perflab.errors import BenchmarkError

__all__ = ["Comparison", "compare"]

ALPHA = 0.002
THRESHOLD = 0.05


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
    verdict: str  # faster | slower | same

    @property
    def speedup(self) -> float:
        """How many times faster the candidate is (baseline / candidate)."""
        return 1.0 / self.ratio if self.ratio else math.inf

    def summary(self) -> pd.Series:
        return pd.Series(
            {
                "baseline_median": self.baseline.median,
                "candidate_median": self.candidate.median,
                "ratio": self.ratio,
                "ratio_ci_low": self.ci_low,
                "ratio_ci_high": self.ci_high,
                "speedup": self.speedup,
                "p_value": self.p_value,
                "verdict": self.verdict,
            },
            name=self.name,
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "ratio": self.ratio,
            "ci": [self.ci_low, self.ci_high],
            "p_value": self.p_value,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "verdict": self.verdict,
            "baseline": self.baseline.to_dict(),
            "candidate": self.candidate.to_dict(),
        }


def verdict(ratio: float, p_value: float, *, threshold: float, alpha: float) -> str:
    """``slower``/``faster`` only when the rank test is significant *and* the median moved by at
    least ``threshold``; otherwise ``same``."""
    if p_value < alpha and ratio >= 1.0 + threshold:
        return "slower"
    if p_value < alpha and ratio <= 1.0 / (1.0 + threshold):
        return "faster"
    return "same"


def compare(
    baseline: Result,
    candidate: Result,
    *,
    threshold: float = THRESHOLD,
    alpha: float = ALPHA,
    match_names: bool = True,
) -> Comparison:
    """Is ``candidate`` faster, slower or the same as ``baseline``?"""
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
    if not 0 <= threshold < 10 or not 0 < alpha < 1:
        raise BenchmarkError(
            f"threshold must be in [0, 10) and alpha in (0, 1); got {threshold}, {alpha}"
        )
    base_median = float(np.median(baseline.samples))
    ratio = float(np.median(candidate.samples)) / base_median if base_median else math.inf
    low, high = stats.bootstrap_ratio_ci(baseline.samples, candidate.samples)
    p = stats.mann_whitney_p(baseline.samples, candidate.samples)
    return Comparison(
        name=candidate.name if match_names else f"{baseline.name} → {candidate.name}",
        baseline=baseline,
        candidate=candidate,
        ratio=ratio,
        ci_low=low,
        ci_high=high,
        p_value=p,
        threshold=threshold,
        alpha=alpha,
        verdict=verdict(ratio, p, threshold=threshold, alpha=alpha),
    )
