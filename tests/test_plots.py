"""Plots: every figure renders, labels its axes with units, keeps the maximum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perflab import bench
from perflab.report import (
    BASELINE,
    OPTIMIZED,
    capacity_plot,
    ecdf_plot,
    latency_histogram,
    percentile_plot,
    ratio_chart,
)


@pytest.fixture
def series():
    rng = np.random.default_rng(0)
    base = rng.lognormal(np.log(2e6), 0.3, 2000)
    base[-1] = 5e7  # one slow outlier that must stay visible
    return {"baseline": base, "optimized": rng.lognormal(np.log(2e5), 0.3, 2000)}


def _rendered(fig) -> None:
    fig.canvas.draw()  # renders without a display (Agg)
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel() and fig.axes[0].get_title()


def test_histogram_keeps_the_max_and_colours(series):
    fig = latency_histogram(series, title="t")
    _rendered(fig)
    ax = fig.axes[0]
    assert "ms" in ax.get_xlabel()
    assert ax.get_xlim()[1] >= 50.0  # the 50 ms outlier is inside the axis
    assert any("max=50" in t.get_text() for t in ax.get_legend().get_texts())
    faces = {tuple(round(c, 3) for c in p.get_facecolor()[:3]) for p in ax.patches}
    assert len(faces) == 2


def test_histogram_from_a_tidy_frame():
    frame = pd.DataFrame({"server": ["a"] * 50 + ["b"] * 50, "ns": np.arange(100) * 1000 + 1})
    _rendered(latency_histogram(frame, by="server"))


def test_ecdf_and_percentile_plots(series):
    _rendered(ecdf_plot(series))
    fig = percentile_plot(series)
    _rendered(fig)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:3] == ["50%", "90%", "99%"] and "99.9%" in labels
    top = max(line.get_ydata().max() for line in ax.get_lines())
    assert top == pytest.approx(50.0)  # the max, in ms


def test_ratio_chart_from_comparisons():
    a = bench.Result(name="x", samples=np.full(50, 100.0) + np.arange(50))
    b = bench.Result(name="x", samples=np.full(50, 10.0) + np.arange(50) / 10)
    fig = ratio_chart([bench.compare(a, b)])
    _rendered(fig)
    assert fig.axes[0].patches[0].get_facecolor()[:3] == pytest.approx(
        tuple(int(OPTIMIZED[i : i + 2], 16) / 255 for i in (1, 3, 5))
    )


def test_capacity_plot():
    curve = pd.DataFrame(
        {"concurrency": [1, 2, 4], "throughput": [100, 180, 200], "p99_ms": [2, 3, 30]}
    )
    fig = capacity_plot({"baseline": curve, "optimized": curve * 2})
    _rendered(fig)
    assert fig.axes[0].get_lines()[0].get_color() == BASELINE


def test_benchmark_names_are_escaped_in_tables_and_legends():
    from perflab.report import latency_table

    evil = "<script>alert(1)</script>"
    frame = pd.DataFrame({"name": [evil] * 5, "ns": np.arange(5) * 1000.0 + 1})
    html = latency_table(frame, by="name").to_html()
    assert evil not in html and "&lt;script&gt;" in html
    fig = latency_histogram({evil: np.arange(1, 50) * 1000.0})
    fig.canvas.draw()  # a legend is text in a PNG: nothing to execute
