"""Tables and pictures for readers: units in every cell, no percentile from too few samples,
profiles as a flame graph and memory as a plot over time."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from perflab import bench, report


def test_latency_table_says_when_samples_are_too_few_for_percentiles():
    frame = pd.DataFrame(
        {"name": ["one"] + ["many"] * 200, "ns": [58_600_000.0, *np.linspace(600, 800, 200)]}
    )
    table = report.latency_table(frame, by="name")
    assert table.loc["one", "n"] == "1" and table.loc["one", "mean"] == "58.6 ms"
    assert [table.loc["one", p] for p in ("p50", "p90", "p99")] == ["n < 3", "n < 10", "n < 100"]
    assert table.loc["many", "p50"] == "700 ns" and table.loc["many", "p99"].endswith(" ns")


def test_figures_table_keeps_units_and_text_values():
    rows = [
        {"label": "insert", "value": 961_234.0, "ci_low": 900_000, "ci_high": 1_000_000,
         "unit": "rows/s", "note": ""},
        {"label": "batch vs row", "value": 1000.0, "ci_low": None, "ci_high": None, "unit": "x",
         "note": "per row"},
        {"label": "columns", "value": "symbol,ts", "unit": "", "note": ""},
    ]  # fmt: skip
    table = report.figures_table(rows)
    assert list(table["value"]) == ["961,000 rows/s", "1,000x", "symbol,ts"]
    assert list(table["95 % CI"]) == ["900,000–1,000,000 rows/s", "—", "—"]
    html = report.styled(table, numeric=["value"]).to_html()
    assert "e+0" not in html and "text-align: left" in html
    evil = report.styled(pd.DataFrame({"name": ["<script>alert(1)</script>"]})).to_html()
    assert "<script>" not in evil and "&lt;script&gt;" in evil


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


def test_cpu_profile_draws_the_profiled_function_as_a_flame_graph():
    profile = bench.cpu_profile(lambda: busy(0.05), min_seconds=0.4)
    assert profile.samples > 20 and profile.calls >= 4
    names = {frame.split(" (")[0] for stack in profile.stacks for frame in stack}
    assert "busy" in names and "_perflab_profiled" not in names  # trimmed at the call
    svg = report.flame_graph(profile, title="<b>busy</b>")._repr_html_()
    assert svg.startswith("<svg") and "<script" not in svg and "&lt;b&gt;busy" in svg
    assert ">busy (" in svg  # a box wide enough to carry its name


def test_memory_timeline_and_its_plot_mark_the_peak():
    def grow() -> None:
        blocks = [np.ones(2_000_000) for _ in range(8)]  # ~128 MB, held for a moment
        time.sleep(0.1)
        del blocks

    timeline = bench.memory_timeline(grow, interval=0.01)
    assert len(timeline.mib) > 5
    assert timeline.peak_mib - timeline.start_mib > 60
    fig = report.memory_plot(timeline)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("peak ") and "MiB" in t for t in texts)


def test_flame_graph_without_samples_is_a_clear_error():
    from perflab.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="profile"):
        report.flame_graph({})


def test_readable_gives_every_cell_its_unit_and_booleans_as_words():
    """Notebook 07 showed `throughput 31.666667`, `failed 0.0`, `p50_ms 50.167907` and a
    column `generator saturated False` on a real service: every table goes through numbers."""
    import pandas as pd

    from perflab.report import readable

    frame = pd.DataFrame(
        {
            "endpoint": ["GET /a", "GET /b"],
            "throughput": [31.666667, 1200.0],
            "failed": [0.0, 0.0125],
            "p50_ms": [50.167907, float("nan")],
            "generator saturated": [False, True],
            "latencies": [1234, 98765],
            "speedup p50": [12.3456, 0.5],
            "hit": [0.853, 0.5],
        }
    )
    out = readable(frame, {"hit": "fraction"})
    assert list(out.iloc[0]) == [
        "GET /a", "31.7 req/s", "0 %", "50.2 ms", "no", "1,234", "12.3x", "85.3 %",
    ]  # fmt: skip
    assert list(out.iloc[1]) == [
        "GET /b", "1,200 req/s", "1.25 %", "—", "yes", "98,765", "0.5x", "50 %",
    ]  # fmt: skip
    assert frame["throughput"].iloc[0] == 31.666667  # the caller's frame is left as it was
