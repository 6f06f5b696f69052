"""Change points in a benchmark's history of run-level figures (one median per run, in ns).

Why this module exists: separate runs of unchanged code on a shared 2-core VM differ by several %
and now and then by up to 1.6x (an outlier run). A single best split (``find_step``) always finds
*some* split, and a rank test over pooled samples then calls it significant, so the nightly
"did X get slower, and since which run?" cried wolf. The question is about runs, so it is asked
of the run-level figures only, with a penalty scaled by the measured run-to-run noise.

Which library, and why (``benchmarks/changepoints.py``, seeded, 1,800 A/A and 5,400 step series
of length 5..200, lognormal noise sd 2/5/10 % with 1 run in 20 an outlier x1.3-1.6; figures in
``outputs/changepoints.json``):

============================  ======  =========  =========  ========  ============
candidate                      A/A FP  +10 % hit  +20 % hit  +50 % hit  20 x 365 runs
============================  ======  =========  =========  ========  ============
ruptures Binseg, L1 (chosen)    1.9 %     39 %       64 %       88 %      0.8 s
ruptures PELT, L1               2.6 %     44 %       67 %       88 %     36 s
ruptures PELT, L2 (mean)         52 %     56 %       80 %       93 %      1.6 s
E-Divisive (MongoDB), p=0.05     21 %     56 %       78 %       95 %       42 s
best split + same penalty       1.4 %     35 %       58 %       84 %      0.4 s
best split, ungated             100 %      -          -          -         0.4 s
============================  ======  =========  =========  ========  ============

("hit" = a change point reported within 2 runs of the true step; the step is somewhere in runs
2..n-2.) E-Divisive and an L2 (mean) cost are fooled by outlier runs: an outlier is a large
distance from everything, and a mean moves with it. An L1 (median) cost is not: putting one
outlier in a segment of its own saves no more than the penalty of the two extra change points.
Binary segmentation over the L1 cost is as accurate as PELT here and ~40x faster (PELT evaluates
O(n^2) medians). ``signal-processing-algorithms`` also pins ``numpy<2``, ``setuptools<71`` and
Python ``<3.12``: installing it downgraded numpy under pandas 3 in this venv, so it cannot be a
dependency. ``ruptures`` (BSD, pure numpy/scipy) imports cleanly on Python 3.11 with numpy 2.4.

Outliers and the newest run (a decision): every segment but the newest lasts at least 2 runs,
so one outlier run between two runs at the same level is never a step; and a change point is
reported only when the level it starts lasts at least ``min_size`` runs (a shorter level in the
middle of the series is folded into the one before it). The newest run is different: nobody can
tell yet whether it is an outlier or the first run of a new level. With ``min_size=1`` (the
default) it is reported as a change point of its own when it departs from its segment by more
than the penalty; the caller judges it (re-run the benchmark, or wait for the next run). With
``min_size >= 2`` a new level is reported once it has lasted ``min_size`` runs, which trades
``min_size - 1`` runs of delay for fewer false alarms (an outlier newest run never alarms).
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from perflab.errors import BenchmarkError

__all__ = ["MIN_NOISE", "PENALTY", "change_points", "last_change", "noise_floor", "run_spread"]

#: Penalty per change point, in units of ``noise_floor * log(n)`` (L1 cost, log values).
#: 2 kept false alarms on A/A series at ~2 % (3 gave ~1 % but lost a fifth of the +20 % steps).
PENALTY = 2.0
#: Lower bound on the noise floor (log units, ~0.5 %): a short or unusually quiet series must
#: not turn every wobble into a step.
MIN_NOISE = 0.005

_MAD_TO_SD = 1.4826


def _log_values(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise BenchmarkError(
            f"change points need a 1-D series of run-level figures, got values of shape "
            f"{x.shape}; pass one benchmark's run medians in run order"
        )
    bad = np.flatnonzero(~np.isfinite(x) | (x <= 0))
    if bad.size:
        i = int(bad[0])
        raise BenchmarkError(
            f"run-level figure values[{i}] = {x[i]!r} is not a positive finite number; "
            "drop that run (a failed run has no median) before looking for change points"
        )
    return np.asarray(np.log(x))


def _noise(x: np.ndarray) -> float:
    if x.size < 2:
        return 0.0
    # Successive differences cancel the level, so a step adds one large difference and an
    # outlier two, which the median ignores. The differences of a flat series are centred on 0,
    # so the deviation is taken about 0. sd(diff) = sqrt(2) * sd(run).
    return float(_MAD_TO_SD * np.median(np.abs(np.diff(x))) / math.sqrt(2.0))


def noise_floor(values: np.ndarray) -> float:
    """Robust run-to-run spread of a series of positive run-level figures, in log units
    (~ relative standard deviation: 0.05 is ~5 %): 1.4826 x median |successive difference of
    log values| / sqrt(2). Steps and single outlier runs barely move it, unlike a plain sd.
    0.0 for fewer than 2 values."""
    return _noise(_log_values(values))


def run_spread(values: np.ndarray) -> float:
    """How much two runs of the newest level may differ as wholes, in log units: the larger of
    :func:`noise_floor` and the robust sd (1.4826 x MAD) of the runs since the last change point.

    Why both: successive differences cancel a slow drift, so on a machine whose speed wanders
    over minutes (runs 233, 256, 263, 266, 268, 254 µs here under one CPU-bound neighbour) they
    report ~1 % while runs further apart differ by 15 %; the spread about the level's median
    sees the drift, and the change points keep a real step out of it."""
    x = _log_values(values)
    if x.size < 2:
        return 0.0
    points = change_points(values)
    level = x[points[-1] :] if points and x.size - points[-1] >= 3 else x
    spread = float(_MAD_TO_SD * np.median(np.abs(level - np.median(level))))
    return max(_noise(x), spread)


def _l1(segment: np.ndarray) -> float:
    return float(np.abs(segment - np.median(segment)).sum()) if segment.size else 0.0


def _check_size(min_size: int) -> int:
    if isinstance(min_size, bool) or not isinstance(min_size, numbers.Integral) or min_size < 1:
        raise BenchmarkError(
            f"min_size={min_size!r} must be a whole number of runs >= 1 (the runs a new level "
            "must last before it counts as a step)"
        )
    return int(min_size)


def change_points(
    values: np.ndarray,
    *,
    min_size: int = 1,
    penalty: float = PENALTY,
    min_noise: float = MIN_NOISE,
) -> list[int]:
    """Indices k where a new level starts (``values[k]`` is the first run after the change),
    ascending; [] when the series is flat within its noise.

    ``values`` are positive run-level figures (one median per run, in run order); they are
    compared as logs, so a step is a ratio. Binary segmentation (ruptures ``Binseg``) over the
    L1 cost, penalty ``penalty * max(noise_floor, min_noise) * log(n)`` per change point.
    Segments last at least 2 runs, so a single outlier run is not a step, and a change point is
    kept only when its level lasts ``min_size`` runs; the newest run alone is reported only when
    ``min_size == 1`` (see the module docstring: the caller judges it)."""
    size = _check_size(min_size)
    if not (isinstance(penalty, numbers.Real) and math.isfinite(penalty) and penalty > 0):
        raise BenchmarkError(f"penalty={penalty!r} must be a positive finite number")
    if not (isinstance(min_noise, numbers.Real) and math.isfinite(min_noise) and min_noise >= 0):
        raise BenchmarkError(f"min_noise={min_noise!r} must be a finite number >= 0")
    x = _log_values(values)
    n = x.size
    if n < 2:
        return []
    pen = float(penalty) * max(_noise(x), float(min_noise)) * math.log(n)
    if pen <= 0.0:
        # min_noise=0 on an exactly flat series: nothing varies, so nothing changed.
        return []
    points: list[int] = []
    if n >= 4:
        # Segments of >= 2 runs place the steps; min_size is applied afterwards. Handing
        # min_size to ruptures instead would move a young step back onto old runs to make
        # its segment long enough, rather than wait for it.
        import ruptures as rpt  # here: it imports scipy.stats (~1 s), which compare never needs

        algo = rpt.Binseg(model="l1", min_size=2, jump=1).fit(x)
        bounds = [int(k) for k in algo.predict(pen=pen)]
        points = [k for k, end in itertools.pairwise(bounds) if end - k >= size]
    if size == 1 and n >= 3:
        start = points[-1] if points else 0
        segment = x[start : n - 1]
        if segment.size >= 2 and _l1(x[start:]) - _l1(segment) > pen:
            points.append(n - 1)
    return points


def last_change(values: np.ndarray, *, min_size: int = 1) -> int | None:
    """Index of the first run of the newest level (see ``change_points``), or None when the
    series has no change point."""
    points = change_points(values, min_size=min_size)
    return points[-1] if points else None
