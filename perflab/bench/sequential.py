"""When to stop an interleaved comparison: a confidence interval that stays valid however often
it is looked at, and the verdict it gives.

``bench.ab`` and ``perflab ab`` add paired replicates (one log-ratio candidate/baseline per
interleaved pair) until every benchmark's answer is known. Stopping "as soon as the interval
excludes 1" with an ordinary 95 % interval would be wrong far more often than 1 in 20: each
look is another chance for noise to cross the line (:func:`naive_error` shows it; with this
module's looks an A/A comparison would be called different about 4 times as often).

The rule here is Pocock's group-sequential design (Pocock 1977), with Student's t so that it
holds with the few pairs of a short run: looks happen only at the pair counts of
:func:`schedule`, and each look uses one nominal level, chosen by simulation so that the chance
that *any* look's interval misses the true ratio is ``alpha``
(:func:`look_alpha`). The t statistic of normal pairs is pivotal (its law does not depend on
the true ratio or the noise), so one simulation serves every benchmark. A wrong verdict needs
the interval to miss the truth, so the error of every verdict — "slower" or "faster" of code
that did not change, "same" of a change past the threshold — is at most ``alpha``.

Several benchmarks in one comparison: Bonferroni, ``alpha / m`` each, which bounds the
family-wise error (the chance that any verdict of the comparison is wrong) by ``alpha``.

The verdicts (:func:`decide`), for a threshold t:

* ``same`` — the whole interval lies within [1/(1+t), 1+t]: any change is below t;
* ``slower`` / ``faster`` — otherwise, when the interval excludes 1;
* ``inconclusive`` — neither (only when the budget ended first).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "MAX_PAIRS",
    "MIN_PAIRS",
    "ROUNDS",
    "THRESHOLD",
    "PairedInterval",
    "Stopper",
    "decide",
    "look_alpha",
    "naive_error",
    "pair_log_ratio",
    "paired_interval",
    "schedule",
]

THRESHOLD = 0.05  # the smallest change that counts, by default
MIN_PAIRS = 5  # the first look: four degrees of freedom
MAX_PAIRS = 200  # the last look; a comparison never takes more pairs
ROUNDS = 6  # blocks per side in one interleaved pair, side by side (see pair_log_ratio)
GROWTH = 1.15  # looks at pair counts about 15 % apart (25 looks up to 200)
SIMULATIONS = 40_000  # A/A sequences behind look_alpha (its error: about ±3 % of alpha)


@functools.lru_cache(maxsize=8)
def schedule(max_pairs: int = MAX_PAIRS) -> tuple[int, ...]:
    """The pair counts at which the interval is looked at: from :data:`MIN_PAIRS`, about
    :data:`GROWTH` apart. Looks far apart cost less than a look at every pair (fewer chances to
    cross, so a narrower interval at each); stopping waits at most 15 % longer than it must."""
    looks = [MIN_PAIRS]
    while looks[-1] < max_pairs:
        looks.append(min(max_pairs, max(looks[-1] + 1, math.ceil(looks[-1] * GROWTH))))
    return tuple(looks)


@functools.lru_cache(maxsize=64)
def look_alpha(alpha: float, max_pairs: int = MAX_PAIRS) -> float:
    """The two-sided level of each look such that over every look of :func:`schedule` the
    chance of any miss is ``alpha`` (normal pairs; simulated once, seeded, then cached)."""
    from scipy import special

    looks = np.asarray(schedule(max_pairs))
    rng = np.random.default_rng(20_201)
    worst = np.ones(SIMULATIONS)
    # in chunks: SIMULATIONS x max_pairs normals at once would be 100+ MB
    for start in range(0, SIMULATIONS, 4_000):
        x = rng.standard_normal((min(4_000, SIMULATIONS - start), int(looks[-1])))
        total = np.cumsum(x, axis=1)[:, looks - 1]
        squares = np.cumsum(x * x, axis=1)[:, looks - 1]
        mean = total / looks
        sd = np.sqrt(np.maximum(squares - looks * mean**2, 1e-300) / (looks - 1))
        t = np.abs(mean) / (sd / np.sqrt(looks))
        p = 2.0 * special.stdtr(looks - 1, -t)  # two-sided p of each look
        worst[start : start + x.shape[0]] = p.min(axis=1)
    return float(np.quantile(worst, alpha))


def naive_error(alpha: float, max_pairs: int = MAX_PAIRS, simulations: int = 4_000) -> float:
    """How often an A/A comparison would be called different if each look used an ordinary
    ``1 - alpha`` interval (for the docs and tests: why :func:`look_alpha` exists)."""
    from scipy import special

    looks = np.asarray(schedule(max_pairs))
    x = np.random.default_rng(7).standard_normal((simulations, int(looks[-1])))
    mean = np.cumsum(x, axis=1)[:, looks - 1] / looks
    var = (np.cumsum(x * x, axis=1)[:, looks - 1] - looks * mean**2) / (looks - 1)
    t = np.abs(mean) / np.sqrt(var / looks)
    return float(((2.0 * special.stdtr(looks - 1, -t)) < alpha).any(axis=1).mean())


@dataclasses.dataclass(frozen=True)
class PairedInterval:
    """candidate / baseline from paired log-ratios: the ratio (geometric mean), its interval
    at ``level`` (two-sided confidence of this look), the pairs it came from and the p value of
    "no change"."""

    ratio: float
    ci_low: float
    ci_high: float
    pairs: int
    level: float
    p_value: float
    sd: float  # of one pair's log-ratio


def paired_interval(log_ratios: np.ndarray, level: float) -> PairedInterval:
    """Student's t interval of the mean log-ratio of paired replicates, at confidence
    ``level``. Pairing is the point: whatever slowed both sides of a pair alike (a slow spell of
    the machine, a busy neighbour) cancels in its log-ratio, so the interval sees only what
    differs between the sides."""
    from scipy import special

    d = np.asarray(log_ratios, dtype=float)
    n = d.size
    mean = float(d.mean()) if n else math.nan
    ratio = math.exp(mean) if n else math.nan
    if n < 2:
        return PairedInterval(ratio, 0.0, math.inf, n, level, math.nan, math.nan)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if se == 0.0:
        return PairedInterval(ratio, ratio, ratio, n, level, 1.0 if mean == 0 else 0.0, 0.0)
    crit = float(special.stdtrit(n - 1, 0.5 + level / 2))
    p = float(2.0 * special.stdtr(n - 1, -abs(mean) / se))
    return PairedInterval(
        ratio, math.exp(mean - crit * se), math.exp(mean + crit * se), n, level, p, sd
    )


def pair_log_ratio(baseline: np.ndarray, candidate: np.ndarray, rounds: int = 1) -> float:
    """One pair's log-ratio candidate/baseline from its two sides' samples (ns per call).

    With ``rounds`` > 1 each side's samples are that many blocks, block k of one side taken
    right beside block k of the other: the pair's figure is the median over blocks of the
    log-ratio of their floors (lower deciles). A spell of the machine that covers one side's
    block and not its neighbour's then moves one block of the six, not the pair (with one
    floor per side over the whole pair, a few such pairs under load widened +5 % runs to
    ±10-20 % at the end of the budget). With one round, the log-ratio of the sides' floors."""
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if rounds > 1 and a.size % rounds == 0 and b.size % rounds == 0:
        qa = np.percentile(a.reshape(rounds, -1), 10.0, axis=1)
        qb = np.percentile(b.reshape(rounds, -1), 10.0, axis=1)
        return float(np.median(np.log(qb) - np.log(qa)))
    return float(np.log(np.percentile(b, 10.0) / np.percentile(a, 10.0)))


def decide(ci_low: float, ci_high: float, threshold: float) -> str:
    """The verdict of an interval (see the module docstring)."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)) or ci_low <= 0:
        return "inconclusive"
    if 1.0 / (1.0 + threshold) <= ci_low and ci_high <= 1.0 + threshold:
        return "same"
    if ci_low > 1.0:
        return "slower"
    if ci_high < 1.0:
        return "faster"
    return "inconclusive"


@dataclasses.dataclass
class Stopper:
    """When a run of pairs stops: at a look where every verdict is known, or at the last look
    the ``budget`` (seconds) can reach — pairs after the last look are never judged, so the
    interval keeps its level. The budget never stops it before the first look: fewer pairs
    could answer nothing. ``at_least``: no look before this many pairs."""

    budget: float
    at_least: int = 0
    decided: int = 0  # pairs at the last look taken (0: none yet)

    def __post_init__(self) -> None:
        self.looks = [n for n in schedule() if n >= self.at_least] or [MAX_PAIRS]

    def after_pair(self, pairs: int, elapsed: float, known: Callable[[], bool]) -> bool:
        """True to stop after ``pairs`` pairs that took ``elapsed`` seconds; ``known()`` is
        asked at looks only: whether every verdict is known."""
        if pairs < self.looks[0]:
            return False
        if pairs in self.looks:
            self.decided = pairs
            if known():
                return True
        later = [n for n in self.looks if n > pairs]
        # at the pace so far, the budget cannot reach the next look: the last one decides
        return not later or elapsed + (later[0] - pairs) * elapsed / pairs > self.budget
