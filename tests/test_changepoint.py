"""Change points over run-level figures: behaviour on seeded synthetic histories (no servers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perflab.bench import changepoint
from perflab.bench.changepoint import change_points, last_change, noise_floor
from perflab.errors import BenchmarkError, PerflabError


def runs(n: int, *, sd: float = 0.05, seed: int = 0) -> np.ndarray:
    """Run medians in ns around 1 µs, lognormal run-to-run noise ``sd``."""
    return 1000.0 * np.exp(np.random.default_rng(seed).normal(0.0, sd, n))


def stepped(n: int, k: int, ratio: float, **kw) -> np.ndarray:
    x = runs(n, **kw)
    x[k:] *= ratio
    return x


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("n", [5, 30, 365])
def test_flat_noisy_series_has_no_change(n, seed):
    x = runs(n, sd=0.05, seed=seed)
    assert change_points(x, min_size=2) == []
    assert last_change(x, min_size=2) is None


def test_flat_series_where_the_hand_written_split_cried_wolf():
    # The old detector (a best split, always found) named one here; the new one names none.
    x = runs(100, sd=0.05, seed=42)
    assert change_points(x) == []


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("n", "k"), [(10, 5), (60, 17), (200, 150), (40, 37)])
def test_clear_step_is_found_at_its_run(n, k, seed):
    x = stepped(n, k, 1.5, sd=0.05, seed=seed)
    points = change_points(x)
    assert len(points) == 1
    assert abs(points[0] - k) <= 1
    assert abs(last_change(x) - k) <= 1


def test_step_of_twenty_percent_in_five_percent_noise():
    x = stepped(80, 50, 1.2, sd=0.05, seed=7)
    assert [abs(p - 50) <= 1 for p in change_points(x)] == [True]


def test_two_steps_are_both_found():
    x = stepped(90, 30, 1.5, sd=0.03, seed=3)
    x[60:] *= 1.5
    points = change_points(x)
    assert len(points) == 2
    assert abs(points[0] - 30) <= 1 and abs(points[1] - 60) <= 1
    assert abs(last_change(x) - 60) <= 1


@pytest.mark.parametrize("at", [0, 1, 10, 25, 38])
@pytest.mark.parametrize("factor", [1.6, 0.6])
def test_one_outlier_run_is_not_a_change(at, factor):
    x = runs(40, sd=0.03, seed=11)
    x[at] *= factor
    assert change_points(x) == []
    assert last_change(x) is None


def test_outliers_do_not_hide_a_step():
    x = stepped(60, 30, 1.5, sd=0.03, seed=5)
    x[[10, 45]] *= 1.6
    assert [abs(p - 30) <= 1 for p in change_points(x)] == [True]


def test_newest_run_alone_is_reported_only_with_min_size_1():
    x = runs(40, sd=0.03, seed=9)
    x[-1] *= 1.6  # outlier or the first run of a new level: nobody can tell yet
    assert change_points(x) == [39]
    assert last_change(x) == 39
    assert change_points(x, min_size=2) == []
    # One run later the new level has persisted for two runs: a step at either setting.
    y = np.append(x, x[-1])
    assert change_points(y) == [39]
    assert change_points(y, min_size=2) == [39]


def test_min_size_holds_back_a_young_level():
    x = stepped(40, 37, 1.5, sd=0.03, seed=2)  # the new level has lasted 3 runs
    assert change_points(x, min_size=3) == [37]
    assert change_points(x, min_size=4) == []


@pytest.mark.parametrize("values", [[], [1000.0], [1000.0, 1600.0], [1000.0, 1000.0]])
def test_short_series_do_not_crash_and_have_no_change(values):
    x = np.array(values)
    assert change_points(x) == []
    assert change_points(x, min_size=3) == []
    assert last_change(x) is None
    assert noise_floor(x) >= 0.0


def test_constant_series_has_no_change():
    x = np.full(20, 1234.0)
    assert noise_floor(x) == 0.0
    assert change_points(x) == []
    assert change_points(x, min_noise=0.0) == []


def test_noise_floor_estimates_the_run_to_run_spread():
    assert noise_floor(runs(2000, sd=0.05, seed=1)) == pytest.approx(0.05, rel=0.1)
    # A step and outliers barely move it (a plain standard deviation would triple).
    x = stepped(2000, 1000, 1.5, sd=0.05, seed=1)
    x[::20] *= 1.5
    assert noise_floor(x) == pytest.approx(0.05, rel=0.2)
    assert np.std(np.log(x)) > 0.15


def test_scale_free():
    x = stepped(50, 20, 1.3, sd=0.03, seed=4)
    assert change_points(x) == change_points(x * 1e6)
    assert noise_floor(x) == pytest.approx(noise_floor(x * 1e-3))


@pytest.mark.parametrize(
    ("values", "culprit"),
    [
        ([1.0, 0.0, 2.0], "values[1]"),
        ([1.0, -3.0], "values[1]"),
        ([1.0, math.nan], "values[1]"),
        ([math.inf, 1.0], "values[0]"),
    ],
)
def test_invalid_figures_name_the_run(values, culprit):
    with pytest.raises(BenchmarkError, match=r"values\[\d\]") as info:
        change_points(np.array(values))
    assert culprit in str(info.value)
    assert isinstance(info.value, PerflabError)
    with pytest.raises(BenchmarkError, match=r"values\[\d\]"):
        noise_floor(np.array(values))


def test_invalid_arguments_name_the_parameter():
    x = runs(10)
    with pytest.raises(BenchmarkError, match="shape"):
        change_points(np.ones((3, 3)))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(BenchmarkError, match="min_size"):
            change_points(x, min_size=bad)
    with pytest.raises(BenchmarkError, match="penalty"):
        change_points(x, penalty=0.0)
    with pytest.raises(BenchmarkError, match="min_noise"):
        change_points(x, min_noise=-1.0)


def test_run_spread_sees_a_slow_drift_that_successive_differences_cancel():
    # a machine whose speed wanders over minutes: neighbours agree, runs further apart do not
    drift = np.array([233.0, 256, 263, 266, 268, 254, 253, 255, 253, 261])
    assert changepoint.noise_floor(drift) < 0.02 < changepoint.run_spread(drift)
    # a real step stays out of the spread: only the newest level counts
    step = np.array([100.0, 101, 99, 100, 101, 130, 131, 129, 130])
    assert changepoint.run_spread(step) < 0.02
    assert changepoint.run_spread(np.array([5.0])) == 0.0
