"""Benchmark suites, registered by name (like papermill's engines). A suite is a function
``(quick: bool) -> list[bench.Result]``; built-in ones load on first use."""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perflab.bench import Result, environment
from perflab.errors import BenchmarkError, ConfigurationError

__all__ = [
    "Suite",
    "SuiteRun",
    "get",
    "load_results",
    "load_run",
    "merge_runs",
    "names",
    "pair",
    "register",
    "run_suite",
    "save_results",
]

_BUILTIN = {
    "harness": "perflab.suites.harness",
    "data": "perflab.suites.data",
    "concurrency": "perflab.suites.concurrency",
    "cache": "perflab.suites.cache",
    "db": "perflab.suites.db",
    "api": "perflab.suites.api",
}
_REGISTRY: dict[str, Suite] = {}


@dataclasses.dataclass(frozen=True)
class SuiteRun:
    """What a suite produced: its results, and named figures that are not latencies (counts,
    ratios of self-checks) under ``checks``."""

    suite: str
    results: list[Result]
    checks: dict[str, Any] = dataclasses.field(default_factory=dict)
    tables: dict[str, Any] = dataclasses.field(default_factory=dict)  # name -> DataFrame


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    help: str
    fn: Callable[[bool], list[Result] | SuiteRun]


def register(name: str, help: str) -> Callable[[Callable], Callable]:
    """Decorator: make ``fn(quick) -> list[Result] | SuiteRun`` available as
    ``perflab bench NAME``."""

    def decorate(fn: Callable) -> Callable:
        _REGISTRY[name] = Suite(name, help, fn)
        return fn

    return decorate


def pair(comparison: Any, baseline_name: str, candidate_name: str) -> list[Result]:
    """Both sides of a ``bench.ab`` comparison as results with names of their own."""
    return [
        dataclasses.replace(comparison.baseline, name=baseline_name),
        dataclasses.replace(comparison.candidate, name=candidate_name),
    ]


def names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def get(name: str) -> Suite:
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise ConfigurationError(
            f"unknown suite {name!r}; known suites: {', '.join(names())}", name="SUITE"
        )
    return _REGISTRY[name]


def run_suite(name: str, *, quick: bool = False) -> SuiteRun:
    suite = get(name)
    produced = suite.fn(quick)
    if isinstance(produced, SuiteRun):
        return produced
    return SuiteRun(suite=suite.name, results=list(produced))


def save_results(path: str | Path, run: SuiteRun) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": 1,
        "suite": run.suite,
        "meta": environment(),
        "checks": run.checks,
        "tables": {k: v.to_dict(orient="split") for k, v in run.tables.items()},
        "results": [r.to_dict() for r in run.results],
    }
    path.write_text(json.dumps(doc, default=str))
    return path


def merge_runs(runs: list[SuiteRun]) -> SuiteRun:
    """One run from several (e.g. one per worker process): samples pooled per benchmark, so
    differences between processes (memory layout, frequency) are part of the spread."""
    import numpy as np

    if not runs:
        raise BenchmarkError("nothing to merge")
    merged: list[Result] = []
    for first in runs[0].results:
        parts = [r for run in runs for r in run.results if r.name == first.name]
        histogram = None
        if all(p.histogram for p in parts):
            hist = parts[0].hdr()
            for p in parts[1:]:
                hist.add(p.hdr())
            histogram = hist.encode().decode("ascii")
        throughputs = [p.throughput for p in parts if p.throughput is not None]
        merged.append(
            dataclasses.replace(
                first,
                samples=np.concatenate([p.samples for p in parts]),
                loops=max(p.loops for p in parts),
                throughput=sum(throughputs) / len(throughputs) if throughputs else None,
                histogram=histogram,
                params={**first.params, "processes": len(parts)},
            )
        )
    checks: dict[str, Any] = {}
    for key in runs[0].checks:
        values = [run.checks[key] for run in runs if key in run.checks]
        numeric = all(isinstance(v, int | float) for v in values)
        checks[key] = sorted(values)[len(values) // 2] if numeric else values[0]
    return SuiteRun(suite=runs[0].suite, results=merged, checks=checks)


def load_run(path: str | Path) -> SuiteRun:
    """A whole suite file (results and checks) written by ``save_results``."""
    doc = _read(path)
    import pandas as pd

    tables = {
        name: pd.DataFrame(t["data"], index=t["index"], columns=t["columns"])
        for name, t in (doc.get("tables") or {}).items()
    }
    return SuiteRun(
        suite=doc.get("suite", "?"),
        results=load_results(path),
        checks=doc.get("checks", {}),
        tables=tables,
    )


def _read(path: str | Path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigurationError(f"no such results file: {path}", name=str(path)) from err
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigurationError(f"cannot read results file {path}: {err}", name=str(path)) from err


def load_results(path: str | Path) -> list[Result]:
    """Results from a suite file written by ``perflab bench --out`` (or one result's JSON)."""
    doc = _read(path)
    try:
        items = doc.get("results", [doc])
        return [Result.from_dict(item) for item in items]
    except (BenchmarkError, TypeError, KeyError) as err:
        raise ConfigurationError(f"{path} is not a perflab results file: {err}") from err
