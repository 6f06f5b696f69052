"""Plots and HTML from results. Imports no subject (cache, db, service): data in, figures out."""

from perflab.report.html import index_page
from perflab.report.plots import latency_histogram
from perflab.report.tables import latency_table

__all__ = ["index_page", "latency_histogram", "latency_table"]
