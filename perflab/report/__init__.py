"""Plots and HTML from results. Imports no subject (cache, db, service): data in, figures out."""

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
from perflab.report.tables import latency_table

__all__ = [
    "BASELINE",
    "OPTIMIZED",
    "capacity_plot",
    "ecdf_plot",
    "index_page",
    "latency_histogram",
    "latency_table",
    "percentile_plot",
    "ratio_chart",
]
