"""Plots and HTML from results. Imports no subject (cache, db, service): data in, figures out."""

from perflab.report.compare import (
    Side,
    before_after,
    before_after_table,
    compare_page,
    ecdf_svg,
    environment_differences,
    load_ab,
    load_side,
    metadata_table,
    most_changed,
    only_on_one_side,
    shared_notes,
    verdict_line,
)
from perflab.report.flame import SvgFigure, flame_graph
from perflab.report.headlines import HEADLINES, RUN_TAG, headline_pairs, headline_rows, with_trends
from perflab.report.html import index_page
from perflab.report.plots import (
    BASELINE,
    OPTIMIZED,
    capacity_plot,
    ecdf_plot,
    latency_histogram,
    memory_plot,
    percentile_plot,
    ratio_chart,
)
from perflab.report.svg import forest_plot, sparkline
from perflab.report.tables import (
    MIN_SAMPLES,
    claims_table,
    comparisons_table,
    figures_table,
    latency_table,
    styled,
)

__all__ = [
    "BASELINE",
    "HEADLINES",
    "MIN_SAMPLES",
    "OPTIMIZED",
    "RUN_TAG",
    "Side",
    "SvgFigure",
    "before_after",
    "before_after_table",
    "capacity_plot",
    "claims_table",
    "compare_page",
    "comparisons_table",
    "ecdf_plot",
    "ecdf_svg",
    "environment_differences",
    "figures_table",
    "flame_graph",
    "forest_plot",
    "headline_pairs",
    "headline_rows",
    "index_page",
    "latency_histogram",
    "latency_table",
    "load_ab",
    "load_side",
    "memory_plot",
    "metadata_table",
    "most_changed",
    "only_on_one_side",
    "percentile_plot",
    "ratio_chart",
    "shared_notes",
    "sparkline",
    "styled",
    "verdict_line",
    "with_trends",
]
