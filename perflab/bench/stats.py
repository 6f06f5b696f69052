"""Statistics over latency samples: pure functions of numpy arrays, no I/O, no clocks.

Medians and quantiles rather than means (means of timings double under CPU contention; medians
of many short rounds hold), distribution-free confidence intervals, and the rank test asv uses.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _scipy

__all__ = [
    "PERCENTILES",
    "bootstrap_ratio_ci",
    "iqr",
    "mann_whitney_p",
    "median_ci",
    "outliers",
    "summarize",
]

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def _array(samples: np.ndarray | list[float]) -> np.ndarray:
    data = np.asarray(samples, dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("samples must be a non-empty 1-d sequence")
    return data


def iqr(samples: np.ndarray) -> float:
    q1, q3 = np.percentile(_array(samples), [25, 75])
    return float(q3 - q1)


def outliers(samples: np.ndarray) -> int:
    """How many samples lie beyond Tukey's fences (1.5 IQR outside the quartiles)."""
    data = _array(samples)
    q1, q3 = np.percentile(data, [25, 75])
    spread = 1.5 * (q3 - q1)
    return int(np.count_nonzero((data < q1 - spread) | (data > q3 + spread)))


def median_ci(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (binomial), as in Conover.

    With fewer than 6 samples the interval is the sample range.
    """
    data = np.sort(_array(samples))
    n = data.size
    if n < 6:
        return float(data[0]), float(data[-1])
    alpha = 1.0 - confidence
    lo = int(_scipy.binom.ppf(alpha / 2, n, 0.5))
    hi = int(_scipy.binom.isf(alpha / 2, n, 0.5))
    lo = max(lo - 1, 0)  # ppf gives a 1-based rank; order statistic index is rank - 1
    hi = min(hi, n - 1)
    return float(data[lo]), float(data[hi])


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value: do ``a`` and ``b`` come from one distribution?"""
    x, y = _array(a), _array(b)
    if np.all(x == x[0]) and np.all(y == y[0]):
        return 1.0 if x[0] == y[0] else 0.0
    return float(_scipy.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def bootstrap_ratio_ci(
    baseline: np.ndarray,
    candidate: np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of median(candidate) / median(baseline). Seeded: reproducible."""
    a, b = _array(baseline), _array(candidate)
    rng = np.random.default_rng(seed)
    ma = np.median(rng.choice(a, size=(resamples, a.size)), axis=1)
    mb = np.median(rng.choice(b, size=(resamples, b.size)), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = mb / ma
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    return float(lo), float(hi)


def summarize(samples: np.ndarray) -> dict[str, float]:
    """n, mean, median, percentiles, min, max, stdev, IQR, median CI and outlier count."""
    data = _array(samples)
    low, high = median_ci(data)
    summary: dict[str, float] = {
        "n": int(data.size),
        "mean": float(data.mean()),
        "median": float(np.median(data)),
    }
    for p, value in zip(PERCENTILES, np.percentile(data, PERCENTILES), strict=True):
        summary[f"p{p:g}"] = float(value)
    summary.update(
        min=float(data.min()),
        max=float(data.max()),
        stdev=float(data.std(ddof=1)) if data.size > 1 else 0.0,
        iqr=iqr(data),
        median_ci_low=low,
        median_ci_high=high,
        outliers=outliers(data),
    )
    return summary
