"""Numbers for people: three significant figures, grouped thousands, never an exponent."""

from __future__ import annotations

import math

import pytest

from perflab.numbers import DASH, duration, interval, number, percent, quantity, times


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1000.0, "1,000x"),
        (1e3, "1,000x"),
        (281.4, "281x"),
        (0.6156, "0.616x"),
        (999.6, "1,000x"),
        (12_345_678, "12,300,000x"),
        (2.5, "2.5x"),
        (1.0, "1x"),
        (math.nan, DASH),
        (None, DASH),
        (math.inf, "∞x"),
    ],
)
def test_times(value, text):
    assert times(value) == text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (667, "ns", "667 ns"),
        (0.667, "us", "667 ns"),
        (667.2, "µs", "667 µs"),
        (1234.5, "µs", "1.23 ms"),
        (1.2e9, "ns", "1.2 s"),
        (0.1, "ms", "100 µs"),
        (45, "ms", "45 ms"),
    ],
)
def test_durations_read_in_their_best_unit(value, unit, text):
    assert duration(value, unit) == text


def test_quantities_intervals_and_percentages():
    assert quantity(961_234, "rows/s") == "961,000 rows/s"
    assert quantity(0.000667, "s") == "667 µs"
    assert quantity(85.0, "%") == "85 %"
    assert quantity(5, "x") == "5x"
    assert quantity("symbol,ts") == DASH  # not a number: a dash, never a crash
    assert interval(0.61, 0.673, "x") == "0.61–0.673x"
    assert interval(100, 2000, "ns") == "100 ns – 2 µs"
    assert interval(None, 3) == DASH
    assert percent(0.853) == "85.3 %"
    assert number(-3.25) == "−3.25"
    for v in (1e-9, 3.3e-5, 7.7e12):
        assert "e" not in number(v)
