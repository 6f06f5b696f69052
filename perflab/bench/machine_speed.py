"""The machine's speed taken out of comparisons and histories: each replicate's figure beside
the reference speed timed with it (:mod:`perflab.bench.reference`), modelled on logs —
within two runs (:func:`adjusted_ratio`, analysis of covariance) and across a benchmark's runs
(:func:`speed_slope`, :func:`speed_adjusted`). Pure functions of numpy arrays."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from perflab.bench.stats import ReplicateRatio, _array, _interval, _t_quantile, replicate_ratio

__all__ = ["adjusted_ratio", "speed_adjusted", "speed_slope"]


def adjusted_ratio(
    baseline: np.ndarray,
    candidate: np.ndarray,
    baseline_reference: np.ndarray,
    candidate_reference: np.ndarray,
    *,
    confidence: float = 0.95,
    between: tuple[float, int] | None = None,
    known_slope: tuple[float, float] | None = None,
) -> ReplicateRatio:
    """candidate / baseline with the machine's speed taken out: analysis of covariance on logs.

    Each replicate's log figure is modelled as its side's level plus ``slope`` times the log of
    the reference speed timed beside it (:mod:`perflab.bench.reference`); the slope is fitted
    within the sides (how strongly this benchmark follows the machine: ~1 for plain Python,
    ~0.5 for ``np.sort`` here, ~0 for code that waits), and the ratio is the sides' difference
    at one reference speed. Its interval: the residual variance with ka + kb - 3 degrees of
    freedom times 1/ka + 1/kb, around every ratio the slope's range allows — from its lower
    confidence limit to at least 1 (see the comment in the code: the slope fitted within runs
    is pulled towards 0). So when whole runs differ in speed and the replicates cannot show
    how the benchmark follows it, the verdict is inconclusive rather than a guess; when the
    machine ran at one speed in both runs, the range costs nothing. Replicates stay the unit;
    pooled samples never enter.

    ``known_slope`` = (slope, standard error): how the benchmark's run figures follow the
    machine's speed across runs (its history knows: :func:`speed_slope`); used instead of the
    range, its uncertainty times the speed's shift added to the interval.

    ``between`` = (sd, runs) as in :func:`replicate_ratio`: how much whole runs differ beyond
    the machine's speed (:func:`speed_adjusted` run figures of the history), added for two
    separate runs. Falls back to :func:`replicate_ratio` (unadjusted) with fewer than two
    replicates per side or no spread of the reference within the sides."""
    y = [np.log(_array(baseline)), np.log(_array(candidate))]
    x = [np.log(_array(baseline_reference)), np.log(_array(candidate_reference))]
    for ys, xs in zip(y, x, strict=True):
        if ys.size != xs.size:
            raise ValueError("one reference figure per replicate")
    ka, kb = y[0].size, y[1].size
    sxx = float(sum(((xs - xs.mean()) ** 2).sum() for xs in x))
    if min(ka, kb) < 2 or not sxx > 0:
        return replicate_ratio(baseline, candidate, confidence=confidence, between=between)
    pairs = list(zip(x, y, strict=True))
    sxy = float(sum(((xs - xs.mean()) * (ys - ys.mean())).sum() for xs, ys in pairs))
    slope = sxy / sxx
    residual = _residual(pairs, slope)
    df = ka + kb - 3
    shift = float(x[1].mean() - x[0].mean())
    moved = float(y[1].mean() - y[0].mean())
    # The slope's range. Within one run the reference also varies for reasons of its own (a
    # process's layout: +-5 % between processes of a quiet run here) that the benchmark does not
    # share, which pulls the fitted slope towards 0 (errors in the variable); a whole run's
    # change of speed, though, hits both (a quiet run here: every benchmark and the reference
    # 1.10-1.14x slower, fitted slopes ~0, "slower" 18 times in 75 A/A verdicts). So the slope
    # is only known to lie between its lower confidence limit and at least 1 (the reference
    # follows itself), and the interval covers every slope in that range, unless it is given.
    extra = []
    if between is not None and between[0] > 0 and between[1] > 1:
        extra.append((2.0 * between[0] ** 2, float(between[1] - 1)))
    speed = math.exp(shift)

    def at(s: float, dof: int, *more: tuple[float, float], **adjusted: float) -> ReplicateRatio:
        # at slope s the figures y - s x are what is compared, with their own spread
        spread = _residual(pairs, s) / dof * (1 / ka + 1 / kb)
        terms = [(spread, float(dof)), *more, *extra]
        return _interval(moved - s * shift, terms, (ka, kb), confidence, **adjusted)

    if known_slope is not None:
        given, given_se = known_slope
        uncertain = (shift**2 * given_se**2, float(max(df, 1)))
        return at(given, df + 1, uncertain, slope=given, speed=speed)
    fitted = at(slope, df, slope=slope, speed=speed)
    half = _t_quantile(0.5 + confidence / 2, df) * math.sqrt(residual / df / sxx)
    low, high = slope - half, max(1.0, slope + half)
    # the interval's ends over s in [low, high] lie at the range's ends (the lower one is
    # concave, the upper convex in s), and the test must hold at every slope in the range
    ends = [at(s, df + 1) for s in (low, high)]
    every = [fitted, *ends]
    width = (high - low) * abs(shift)
    return dataclasses.replace(
        fitted,
        ci_low=min(r.ci_low for r in every),
        ci_high=max(r.ci_high for r in every),
        p_value=max(r.p_value for r in every),
        detectable=math.expm1(math.log1p(max(r.detectable for r in every)) + width),
        slopes=(low, high),
    )


def _residual(pairs: list[tuple[np.ndarray, np.ndarray]], slope: float) -> float:
    """Sum of squares of y - slope * x about each side's own mean."""
    total = 0.0
    for xs, ys in pairs:
        z = ys - slope * xs
        total += float(((z - z.mean()) ** 2).sum())
    return total


def speed_slope(
    figures: np.ndarray | list[float], speeds: np.ndarray | list[float]
) -> tuple[float, float] | None:
    """How run figures follow the machine's speed across runs: (slope, its standard error) of
    log figure on log speed by least squares; None with fewer than 4 runs or no spread of
    speed. Across runs a run's speed is the mean over its processes, so the reference's noise
    of its own (which pulls a slope fitted within one run towards 0) mostly averages out."""
    y, x = np.log(_array(figures)), np.log(_array(speeds))
    if y.size != x.size:
        raise ValueError("one speed per run figure")
    dx = x - x.mean()
    sxx = float((dx**2).sum())
    if y.size < 4 or not sxx > 0:
        return None
    slope = float((dx * (y - y.mean())).sum()) / sxx
    rest = y - y.mean() - slope * dx
    return slope, math.sqrt(float((rest**2).sum()) / (y.size - 2) / sxx)


def speed_adjusted(
    figures: np.ndarray | list[float], speeds: np.ndarray | list[float]
) -> np.ndarray:
    """Run figures with the machine's speed taken out, for learning how much whole runs differ
    beyond it: log figure minus slope x (log speed - its mean), the slope fitted across the runs
    (:func:`speed_slope`). Unchanged with fewer than 4 runs or no spread of speed."""
    y, x = np.log(_array(figures)), np.log(_array(speeds))
    fit = speed_slope(figures, speeds)
    if fit is None:
        return np.asarray(np.exp(y))
    return np.asarray(np.exp(y - fit[0] * (x - x.mean())))
