"""Benchmark suites, registered by name (like papermill's engines). A suite is a function
``(quick: bool) -> list[bench.Result]`` (or a :class:`SuiteRun`); built-in ones load on first
use, and a user's file of ``bench_*`` functions is a suite too (:func:`from_file`).

A suite's named figures (``checks``) are plain values, or :func:`figure` dicts that carry a
confidence interval built from replicates — what the claims audit judges by.

One concern per module: ``runs`` (what a suite is and produced), ``registry`` (by name, from a
file, running one), ``figures`` (checks with intervals), ``files`` (results files and the
published folder), ``merging`` (process replicates into one run), ``workers`` (fresh
interpreters)."""

from __future__ import annotations

from perflab.suites.figures import centre_figure, figure, figure_parts, pair, ratio_figure
from perflab.suites.files import (
    FORMAT,
    load_results,
    load_run,
    publish,
    published,
    save_results,
)
from perflab.suites.merging import merge_runs
from perflab.suites.registry import from_file, get, names, register, run_suite, set_timeout
from perflab.suites.runs import Suite, SuiteRun
from perflab.suites.workers import DEFAULT_PROCESSES, run_in_processes

__all__ = [
    "AB_QUICK",
    "DEFAULT_PROCESSES",
    "FORMAT",
    "Suite",
    "SuiteRun",
    "centre_figure",
    "figure",
    "figure_parts",
    "from_file",
    "get",
    "load_results",
    "load_run",
    "merge_runs",
    "names",
    "pair",
    "publish",
    "published",
    "ratio_figure",
    "register",
    "run_in_processes",
    "run_suite",
    "save_results",
    "set_timeout",
]

#: seconds a headline ``bench.ab`` may take in quick runs (full runs: its default); most answer
#: in well under a second, a pair whose two arms differ by about the threshold takes it all
AB_QUICK = 2.0
