"""Plots and HTML from results. Imports no subject (cache, db, service): data in, figures out."""

from perflab.report.headlines import HEADLINES, RUN_TAG, headline_pairs, headline_rows, with_trends
from perflab.report.html import index_page
from perflab.report.plots import (
    BASELINE,
    OPTIMIZED,
    capacity_plot,
    ecdf_plot,
    latency_histogram,
    percentile_plot,
    ratio_chart,
)
from perflab.report.svg import forest_plot, sparkline
from perflab.report.tables import latency_table

__all__ = [
    "BASELINE",
    "HEADLINES",
    "OPTIMIZED",
    "RUN_TAG",
    "capacity_plot",
    "ecdf_plot",
    "forest_plot",
    "headline_pairs",
    "headline_rows",
    "index_page",
    "latency_histogram",
    "latency_table",
    "percentile_plot",
    "ratio_chart",
    "sparkline",
    "with_trends",
]
